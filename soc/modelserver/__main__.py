"""``python -m soc.modelserver``: serve one GGUF model over OpenAI's chat API.

The command center and ``soc run``/``soc replay`` start it themselves (see
:mod:`soc.modelserver.supervisor`); it can also be run by hand, as any
OpenAI-compatible server, and the ``openai_compatible`` analyst pointed at it::

    SOC_MODEL_SERVER_TOKEN=… python -m soc.modelserver --model models/x.gguf --port 8088

Exit status: 0 after SIGTERM/SIGINT (or when the parent that started it dies),
2 for bad arguments, 3 when the model cannot be loaded (the reason is the last
line on stderr, prefixed ``model server: cannot load:``).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import ipaddress
import logging
import os
import socket
import sys
import threading
from pathlib import Path

from soc.modelserver import EXIT_LOAD_FAILED, LOAD_FAILED_PREFIX, TOKEN_ENV
from soc.modelserver.llama import EngineConfig, EngineError, LlamaEngine


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m soc.modelserver",
        description="Serve a GGUF model through llama.cpp with OpenAI's chat completions API.",
    )
    p.add_argument("--model", type=Path, required=True, help="the GGUF file")
    p.add_argument("--model-id", help="the model's name in the API (default: the file name)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, default=8088, help="TCP port (default 8088)")
    where.add_argument("--fd", type=int, help="serve on this inherited listening socket")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--n-gpu-layers", type=int, default=0)
    p.add_argument("--n-threads", type=int, default=0)
    p.add_argument("--chat-format", default="")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds per completion")
    p.add_argument("--max-tokens", type=int, default=4096, help="the most a request may ask for")
    p.add_argument(
        "--parent-fd", type=int, help="exit when this inherited pipe closes (the parent died)"
    )
    return p


def _exit_with_parent(fd: int) -> None:
    """Exit once the parent's end of the pipe closes: a server outliving its app is a leak."""

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os._exit(0)

    threading.Thread(target=watch, name="soc-parent-watch", daemon=True).start()


def _oom_first() -> None:
    """Ask the kernel to pick this process first if memory runs out (never the app)."""
    # not Linux, or a sandbox that forbids it: the memory check still ran
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000", encoding="ascii")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    faulthandler.enable()  # a native crash leaves a Python traceback on stderr
    logging.basicConfig(level=logging.INFO, format="model server: %(message)s", stream=sys.stderr)
    if args.parent_fd is not None:
        _exit_with_parent(args.parent_fd)
    _oom_first()
    token = os.environ.get(TOKEN_ENV, "")
    if args.fd is None and not token and not ipaddress.ip_address(args.host).is_loopback:
        print(f"model server: refusing to serve {args.host} without {TOKEN_ENV}", file=sys.stderr)
        return 2

    import uvicorn

    from soc.modelserver.app import create_app, load_in_background

    engine = LlamaEngine(
        EngineConfig(
            model_path=args.model,
            n_ctx=args.n_ctx,
            n_gpu_layers=args.n_gpu_layers,
            n_threads=args.n_threads,
            chat_format=args.chat_format,
        )
    )
    app = create_app(
        engine,
        model_id=args.model_id or args.model.name,
        token=token,
        request_timeout=args.request_timeout,
        max_tokens=args.max_tokens,
    )

    def load_failed(exc: EngineError) -> None:
        print(f"{LOAD_FAILED_PREFIX}{exc.message}", file=sys.stderr, flush=True)
        os._exit(EXIT_LOAD_FAILED)

    load_in_background(engine, load_failed)
    options: dict[str, object] = {"log_level": "warning", "access_log": False, "lifespan": "off"}
    if args.fd is None:
        options.update(host=args.host, port=args.port)
    server = uvicorn.Server(uvicorn.Config(app, **options))  # type: ignore[arg-type]
    server.run(sockets=None if args.fd is None else [socket.socket(fileno=args.fd)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
