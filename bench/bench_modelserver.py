"""Model server benchmark: what running the model in its own process costs.

Side by side in one run, on the bundled Gemma 3 270M (2-core CPU), the same
requests (the same prompt, schema, seed and token limit, so the same tokens):

1. llama.cpp in this process (:class:`soc.modelserver.llama.LlamaEngine`, how
   the analyst ran the model before it had a server of its own);
2. through the supervised model server (:class:`soc.analyze.local.LocalProvider`:
   HTTP on loopback to ``python -m soc.modelserver``).

It prints the median latency of each and their ratio, the time from starting
the supervisor to a server ready to answer, the server's resident memory after
the requests (the mapped model file apart) against what the supervisor's memory
check estimated, and the time from a SIGKILL of the server to a new one ready
(the backoff's first second included).

Run: ``python bench/bench_modelserver.py [--requests N] [--tokens N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from soc.analyze import AnalyzeConfig  # noqa: E402
from soc.analyze.local import LocalProvider, bundled_model_path  # noqa: E402
from soc.modelserver.gguf import model_memory  # noqa: E402
from soc.modelserver.llama import EngineConfig, LlamaEngine  # noqa: E402

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "summary": {"type": "string", "maxLength": 80},
    },
    "required": ["severity", "summary"],
}
SYSTEM = "You are a SOC analyst. Reply with JSON only."
USER = "Incident: 500 failed SSH logins from 203.0.113.5 in 60 seconds against 20 users."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=7, help="requests per side")
    parser.add_argument("--tokens", type=int, default=48, help="max output tokens a request")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    model = bundled_model_path(REPO / "models")
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]

    engine = LlamaEngine(EngineConfig(model_path=model))
    engine.load()
    in_process = []
    for _ in range(args.requests):
        started = time.perf_counter()
        result = engine.chat(messages, schema=SCHEMA, max_tokens=args.tokens)
        in_process.append(time.perf_counter() - started)
    engine.close()
    tokens = result.completion_tokens

    config = AnalyzeConfig(chain=["local"], max_output_tokens=args.tokens)
    provider = LocalProvider(config, models_dir=REPO / "models")
    started = time.perf_counter()
    provider.start()
    server = provider.server
    if server is None or server.wait_ready(120) is not None:
        raise SystemExit(f"the model server did not start: {provider.unavailable()}")
    start_s = time.perf_counter() - started
    served = []
    try:
        for _ in range(args.requests):
            started = time.perf_counter()
            completion = provider.complete(SYSTEM, USER, SCHEMA)
            served.append(time.perf_counter() - started)
        if completion.tokens_out != tokens:
            raise SystemExit(f"not the same work: {completion.tokens_out} != {tokens} tokens")
        pid = server.pid
        if pid is None:
            raise SystemExit("no server process")
        memory = _resident_mib(pid)
        killed = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        server.death_since(0.0)
        if server.wait_ready(120) is not None:
            raise SystemExit("the model server did not come back")
        restart_s = time.perf_counter() - killed
    finally:
        provider.close()

    inside, outside = statistics.median(in_process), statistics.median(served)
    estimate = model_memory(model, n_ctx=config.local_n_ctx).total_bytes
    results = {
        "model": model.name,
        "requests": args.requests,
        "output_tokens": tokens,
        "in_process_median_s": round(inside, 3),
        "model_server_median_s": round(outside, 3),
        "ratio": round(outside / inside, 3),
        "start_to_ready_s": round(start_s, 2),
        "sigkill_to_ready_s": round(restart_s, 2),
        "server_resident_mib": memory,
        "memory_check_estimate_mib": round(estimate / 2**20),
    }
    print(
        f"model server benchmark: {model.name}, {args.requests} requests a side, "
        f"{tokens} output tokens each (2-core CPU)"
    )
    print(f"  {'llama.cpp in this process':<36} median {inside:6.3f} s   1.00x")
    print(
        f"  {'through the model server (HTTP)':<36} median {outside:6.3f} s   "
        f"{outside / inside:.2f}x"
    )
    print(f"  supervisor start to a ready server: {start_s:.2f} s (process, imports, model load)")
    print(f"  SIGKILL to a new server ready:      {restart_s:.2f} s (1 s backoff included)")
    print(
        f"  server resident after the requests: {memory['VmRSS']} MiB ({memory['RssFile']} MiB "
        f"of it the mapped model file, {memory['RssAnon']} MiB the rest); the memory check "
        f"estimated {estimate / 2**20:.0f} MiB"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _resident_mib(pid: int) -> dict[str, int]:
    """VmRSS, RssFile and RssAnon of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssFile", "RssAnon"):
            fields[name] = round(int(value.split()[0]) / 1024)
    return fields


if __name__ == "__main__":
    raise SystemExit(main())
