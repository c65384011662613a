"""Running what a step planned: argv lists through ``subprocess`` (never a shell), webhooks.

Commands run with ``shell=False``, stdin closed, a minimal environment (``PATH``
and ``LC_ALL=C`` only), the configured prefix (``sudo -n``, ``ip netns exec
NAME``) and a timeout. What they print is kept as an excerpt for the audit log,
with secrets masked.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence

from soc.redact import redact
from soc.respond.base import Command, Outcome, Request

_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
_EXCERPT = 2000


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _excerpt(text: str) -> str:
    text = redact(text.strip())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def run_commands(
    commands: Sequence[Command], *, prefix: Sequence[str] = (), timeout: float = 30.0
) -> Outcome:
    """Run ``commands`` in order, stopping at the first failure."""
    outputs: list[str] = []
    status: int | None = None
    env = {**_ENV, "PATH": os.environ.get("PATH", _ENV["PATH"])}
    for command in commands:
        if command.unless is not None:
            check = _run([*prefix, *command.unless], env, timeout)
            if check[0] == 0:
                outputs.append(f"$ {' '.join(command.unless)}: already in place")
                continue
        status, output = _run([*prefix, *command.argv], env, timeout)
        if output:
            outputs.append(output)
        if status not in command.ok_exit:
            return Outcome(False, status, _excerpt("\n".join(outputs)))
    return Outcome(True, status, _excerpt("\n".join(outputs)))


def _run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(
            argv,
            shell=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: timed out after {timeout:g} s"
    except OSError as exc:
        return 126, f"{argv[0]}: {exc.strerror}"
    text = (done.stdout + done.stderr).decode("utf-8", "replace")
    return done.returncode, text


def post(request: Request, *, timeout: float = 10.0) -> Outcome:
    """POST ``request``'s JSON body; any 2xx is success, redirects are not followed."""
    data = json.dumps(request.body, ensure_ascii=True).encode()
    req = urllib.request.Request(  # noqa: S310 - the URL is checked as http(s) in the config
        request.url, data=data, method="POST", headers=dict(request.headers)
    )
    opener = urllib.request.build_opener(_NoRedirects())
    try:
        with opener.open(req, timeout=timeout) as response:
            body = response.read(2048).decode("utf-8", "replace")
            return Outcome(200 <= response.status < 300, response.status, _excerpt(body))
    except urllib.error.HTTPError as exc:
        return Outcome(False, exc.code, _excerpt(f"HTTP {exc.code} from {request.shown_url}"))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(False, None, _excerpt(f"cannot reach {request.shown_url}: {reason}"))


__all__ = ["post", "run_commands"]
