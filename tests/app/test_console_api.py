"""The command center's server also serves the REST API under ``/api``, on its own runtime.

One process, one runtime: a token created in the store reads the incidents the
console's replay found, through ``/api`` on the console's port; the console's
session cookie is not what guards it, the bearer token is. ``[api] console =
false`` turns it off.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from soc.store import open_store
from soc.store.api import ApiLog
from tests.app.browser import app_environment, run_app


def _token(work: Path, scopes: list[str]) -> str:
    store = open_store(f"sqlite:///{work / 'soc.db'}")
    try:
        return ApiLog(store).create_token("console-test", scopes, now=time.time())
    finally:
        store.close()


def test_the_console_serves_the_api_over_its_own_runtime(tmp_path: Path) -> None:
    token = _token(tmp_path, ["read"])
    with run_app(tmp_path, env=app_environment(tmp_path)) as app:
        assert requests.get(f"{app.url}/api/incidents", timeout=10).status_code == 401
        bad = requests.get(
            f"{app.url}/api/incidents", headers={"Authorization": "Bearer soc_nope"}, timeout=10
        )
        assert (bad.status_code, bad.json()) == (401, {"detail": "unauthorized"})
        deadline = time.monotonic() + 60
        total = 0
        while time.monotonic() < deadline and total < 10:  # the samples' 10 incidents
            answer = requests.get(
                f"{app.url}/api/incidents",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            total = answer.json()["total"]
            time.sleep(0.5)
        assert total == 10
        health = requests.get(f"{app.url}/api/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["checks"]["store"] == "ok"
        # The console's own security headers are on the API's answers too.
        assert health.headers["X-Frame-Options"] == "DENY"


def test_the_console_api_can_be_turned_off(tmp_path: Path) -> None:
    token = _token(tmp_path, ["read"])
    env = app_environment(tmp_path, {"SOC_API__CONSOLE": "false"})
    with run_app(tmp_path, env=env) as app:
        answer = requests.get(
            f"{app.url}/api/incidents", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 404
