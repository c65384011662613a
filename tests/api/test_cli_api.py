"""``soc api token create|list|revoke`` and ``soc api serve``'s binding rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soc.cli import main
from soc.cli_api import is_loopback
from soc.store import open_store
from soc.store.api import ApiLog, token_digest


def test_tokens_from_the_shell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkey_config = tmp_path / "soc.toml"
    monkey_config.write_text("", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'soc.db'}"
    base = ["--config", str(monkey_config), "api", "token"]
    assert main([*base, "create", "siem", "--scope", "intake", "--scope", "read", "--db", db]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("soc_") and len(token) > 40
    assert "siem (intake, read) created" in err and token not in err
    store = open_store(db)
    try:
        record = ApiLog(store).lookup(token)
        assert record is not None and record.scopes == ["intake", "read"]
        with store.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT token_hash FROM api_tokens").scalars().all()
        assert stored == [token_digest(token)]  # the digest, never the token
    finally:
        store.close()
    assert main([*base, "create", "siem", "--db", db]) == 2
    assert "a token named 'siem' exists" in capsys.readouterr().err
    assert main([*base, "create", "bad name", "--db", db]) == 2
    capsys.readouterr()
    assert main([*base, "list", "--json", "--db", db]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["scopes"], row["revoked_at"]) == ("siem", ["intake", "read"], None)
    assert token not in json.dumps(row)
    assert main([*base, "revoke", "siem", "--db", db]) == 0
    assert capsys.readouterr().out == "revoked siem\n"
    assert main([*base, "revoke", "siem", "--db", db]) == 2
    assert capsys.readouterr().err == "soc: error: NAME: no active token named 'siem'\n"
    assert main([*base, "list", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "scopes", "created", "(UTC)", "last", "used", "revoked"]
    assert lines[1].startswith("siem  intake,read  ") and lines[1].endswith("Z")


def test_serve_refuses_to_bind_beyond_loopback_without_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "soc.toml"
    config.write_text("", encoding="utf-8")
    args = ["--config", str(config), "api", "serve", "--host", "0.0.0.0", "--port", "0"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "soc: error: --host: refusing to serve 0.0.0.0 without TLS: give --tls-cert and "
        "--tls-key, or --allow-insecure-bind\n"
    )
    assert main([*args, "--tls-cert", "c.pem"]) == 2
    assert "go together" in capsys.readouterr().err


def test_loopback_names() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""))


def test_api_settings_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "soc.toml"
    config.write_text("[api]\nmax_events = 0\n", encoding="utf-8")
    assert main(["--config", str(config), "config"]) == 2
    assert "[api] max_events: must be at least 1, got 0" in capsys.readouterr().err
