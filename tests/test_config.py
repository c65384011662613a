"""Configuration: defaults, the documented soc.toml, env overrides, refusals, secrets."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.cli import main
from soc.config import SECRET_ENV, Settings, load_settings, settings_from_dict
from soc.enrich import IntelSpec
from soc.errors import ConfigError
from soc.export import sink_classes
from soc.redact import process_secrets

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """``soc config`` registers the secrets it loads process-wide: forget them after."""
    yield
    process_secrets().clear()


def defaults_of(config_cls: type[Any]) -> Any:
    """An instance of a sink config with every default (a webhook needs an address)."""
    return (
        config_cls(url="https://hooks.example.org/")
        if config_cls.__name__ == "WebhookConfig"
        else config_cls()
    )


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "soc.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ=environ or {}, secrets_path=tmp_path / "absent.toml")


def test_empty_file_gives_code_defaults(tmp_path: Path) -> None:
    settings = _load(tmp_path, "")
    assert settings.store.url == "sqlite:///data/soc.db"
    assert settings.engine.batch_lines == 20_000
    assert settings.parse.format == "auto"
    assert settings.sources == []
    assert settings.secrets == {}


def test_documented_soc_toml_is_valid_and_equals_the_defaults(tmp_path: Path) -> None:
    """Uncommenting every documented key must load, and give the code's defaults."""
    documented = (ROOT / "soc.toml").read_text(encoding="utf-8")
    as_shipped = _load(tmp_path, documented)
    uncommented = re.sub(r'^# (?=\[|[a-z_]+ = |"[^"]+" = )', "", documented, flags=re.MULTILINE)
    # the year line documents an option, not a default
    uncommented = re.sub(r"^year = .*$", "", uncommented, flags=re.MULTILINE)
    everything = _load(tmp_path, uncommented)
    defaults = Settings()
    for section in ("store", "engine", "parse", "window", "detect", "analyze", "console"):
        assert getattr(as_shipped, section) == getattr(defaults, section)
        assert getattr(everything, section) == getattr(defaults, section), section
        # every key of the section is documented
        block = re.search(rf"^# \[{section}\].*?(?=^$)", documented, re.MULTILINE | re.DOTALL)
        assert block is not None, section
        for f in dataclasses.fields(getattr(defaults, section)):
            documented_as = rf"^# ({f.name} = |\[{section}\.{f.name}\])"  # a key or a table
            assert re.search(documented_as, block.group(0), re.MULTILINE), (section, f.name)
    assert [e.type for e in everything.exports] == ["elasticsearch", "webhook"]
    for export in everything.exports:
        config_cls, _ = sink_classes(export.type)
        for f in dataclasses.fields(config_cls):
            if f.name == "url":  # an example: a webhook has no default address
                continue
            assert f.name in export.options, (export.name, f.name)
            assert export.options[f.name] == getattr(defaults_of(config_cls), f.name), (
                export.name,
                f.name,
            )
    assert [s.type for s in everything.sources] == ["file", "file", "syslog", "journal"]
    assert as_shipped.intel == []  # no feed unless configured
    assert [(i.name, i.type) for i in everything.intel] == [
        ("cert", "stix"),
        ("opencti", "taxii"),
        ("spamhaus-drop", "blocklist"),
    ]
    # every intel key is documented, and the stix example shows every default
    intel_block = documented[documented.index("# [[intel]]") : documented.index("# Sources:")]
    for f in dataclasses.fields(IntelSpec):
        assert re.search(rf"^# {f.name} = ", intel_block, re.MULTILINE), f.name
    cert = everything.intel[0]
    for f in dataclasses.fields(IntelSpec):
        if f.name in ("name", "type", "path"):
            continue
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        assert getattr(cert, f.name) == default, f.name
    auth = everything.sources[0]
    assert auth.name == "auth"
    assert auth.options.paths == ["/var/log/auth.log", "/var/log/secure"]
    # every documented source key shows that source type's default (paths are examples)
    for spec in everything.sources:
        for f in dataclasses.fields(spec.options):
            if f.name == "paths":
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                continue
            assert getattr(spec.options, f.name) == default, (spec.name, f.name)


def test_unknown_key_is_refused_naming_key_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "[store]\nurll = 'sqlite://'\n")
    message = str(err.value)
    assert "urll" in message
    assert "soc.toml" in message
    assert "[store]" in message


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section 'stroe'"):
        _load(tmp_path, "[stroe]\nurl = 'x'\n")


def test_bad_value_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "[engine]\nbatch_lines = 'many'\n")
    assert "batch_lines" in str(err.value)
    assert "must be an integer" in str(err.value)
    with pytest.raises(ConfigError, match="batch_lines"):
        _load(tmp_path, "[engine]\nbatch_lines = 0\n")


def test_bad_source_key_is_refused_naming_source_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "[[sources]]\ntype = 'file'\npaths = ['/x']\ntail = true\n")
    assert "tail" in str(err.value)
    assert "[[sources]] #1" in str(err.value)
    with pytest.raises(ConfigError, match="unknown source type 'tcp'"):
        _load(tmp_path, "[[sources]]\ntype = 'tcp'\n")
    with pytest.raises(ConfigError, match="start_at"):
        _load(tmp_path, "[[sources]]\ntype = 'file'\npaths = ['/x']\nstart_at = 'middle'\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('sources = ["x"]', "[[sources]] #1: each source must be a table"),
        ("[[sources]]\nname = 'a'", "'type' is required (file, replay, syslog, journal, stdin)"),
        ("[[sources]]\ntype = 'stdin'\nname = ''", "name: 'name' must be a non-empty string"),
        ("[[sources]]\ntype = 'stdin'\nname = '(engine)'", "name: names starting with '('"),
        ('exports = ["x"]', "[[exports]] #1: each export must be a table"),
        ("[[exports]]\nname = 'a'", "'type' is required (elasticsearch, webhook)"),
        ("[[exports]]\ntype = 'kafka'", "unknown sink type 'kafka'"),
        ("[[exports]]\ntype = 'webhook'\nname = 3", "name: 'name' must be a non-empty string"),
    ],
)
def test_source_and_export_tables_are_checked_alike(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert message in str(err.value)


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    text = "[[sources]]\ntype = 'stdin'\n[[sources]]\ntype = 'stdin'\n"
    with pytest.raises(ConfigError, match="duplicate source names: stdin"):
        _load(tmp_path, text)


def test_sources_inherit_parse_defaults_and_override_them(tmp_path: Path) -> None:
    text = (
        "[[sources]]\nname = 'a'\ntype = 'stdin'\n"
        "[[sources]]\nname = 'b'\ntype = 'stdin'\ntimezone = 'UTC'\n"
        "[parse]\ntimezone = 'Europe/Paris'\n"
    )
    settings = _load(tmp_path, text)
    assert [s.parse.timezone for s in settings.sources] == ["Europe/Paris", "UTC"]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        "[store]\nurl = 'sqlite:///a.db'\n",
        environ={
            "SOC_STORE__URL": "sqlite:///b.db",
            "SOC_ENGINE__BATCH_LINES": "500",
            "SOC_TEST_POSTGRES_URL": "not a config override",
        },
    )
    assert settings.store.url == "sqlite:///b.db"
    assert settings.engine.batch_lines == 500


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SOC_NOPE__X"):
        _load(tmp_path, "", environ={"SOC_NOPE__X": "1"})
    with pytest.raises(ConfigError, match="batch_lines"):
        _load(tmp_path, "", environ={"SOC_ENGINE__BATCH_LINES": "lots"})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"soc\.toml.*not valid TOML"):
        _load(tmp_path, "[store\n")


def test_secrets_from_environment_first_then_secrets_file(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('GEMINI_API_KEY = "from-file-123"\n', encoding="utf-8")
    config = tmp_path / "soc.toml"
    config.write_text("", encoding="utf-8")
    from_file = load_settings(config, environ={}, secrets_path=secrets_file)
    assert from_file.secrets["gemini_api_key"].reveal() == "from-file-123"
    from_env = load_settings(
        config, environ={"GEMINI_API_KEY": "from-env-456"}, secrets_path=secrets_file
    )
    assert from_env.secrets["gemini_api_key"].reveal() == "from-env-456"
    # never shown: not in repr, str, or the described configuration
    described = json.dumps(from_env.describe(), default=str)
    assert "from-env-456" not in described
    assert "from-env-456" not in repr(from_env)
    assert from_env.describe()["secrets"]["gemini_api_key"] is True


def test_describe_masks_url_credentials_and_secret_values_held_in_settings(
    tmp_path: Path,
) -> None:
    key = "AIzaSyDescribe-0123456789abcdef"
    settings = _load(
        tmp_path,
        """
[store]
url = "postgresql+psycopg2://soc:Db-Passw0rd-771@db.example/soc"

[analyze]
gemini_base_url = "https://proxy.example/AIZASYDESCRIBE-0123/v1beta"
""",
        environ={"GEMINI_API_KEY": key},
    )
    described = settings.describe()
    assert described["store"]["url"] == "postgresql+psycopg2://soc:***@db.example/soc"
    # a setting that happens to hold (an upper-cased part of) a secret shows none of it
    assert described["analyze"]["gemini_base_url"] == "https://proxy.example/***/v1beta"
    assert settings.store.url.endswith("Db-Passw0rd-771@db.example/soc")  # the real one is kept


def test_soc_config_command_masks_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEMINI_API_KEY", "sk-very-secret-999")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "sk-very-secret-999" not in out
    assert json.loads(out)["secrets"]["gemini_api_key"] is True


def test_cli_reports_config_errors_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "soc.toml").write_text("[engine]\nidle_sleep = 'x'\n", encoding="utf-8")
    assert main(["config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("soc: error: soc.toml: [engine] idle_sleep")
    assert "\n" not in err


def test_the_readme_one_line_server_settings_load(tmp_path: Path) -> None:
    """Each one-line setting the README gives for Ollama, vLLM, llama-server and LM Studio."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"`(analyze = \{ chain = \[\"openai_compatible\".*?\})`", readme)
    assert len(lines) == 4, lines
    ports = set()
    for line in lines:
        settings = _load(tmp_path, line)
        assert settings.analyze.chain == ["openai_compatible", "offline"]
        assert settings.analyze.openai_base_url.startswith("http://127.0.0.1:")
        ports.add(settings.analyze.openai_base_url.split(":")[2])
    assert ports == {"11434/v1", "8000/v1", "8080/v1", "1234/v1"}


INTEL = """
[[intel]]
name = "cert"
type = "stix"
path = "data/intel"

[[intel]]
name = "opencti"
type = "taxii"
url = "https://opencti.example.org/taxii2/root/collections/c1/?api_key=Query-Key-8812"
user = "soc@example.org"
password_secret = "taxii_password"
refresh_minutes = 15
confidence = 60

[[intel]]
name = "octi-token"
type = "taxii"
url = "https://opencti.example.org/taxii2/"
api_root = "default"
collection = "Indicators"
token_secret = "opencti_token"

[[intel]]
name = "drop"
type = "blocklist"
url = "https://www.spamhaus.org/drop/drop.txt"
labels = ["spamhaus-drop"]
enabled = false
"""


def test_intel_feeds_load_with_defaults_and_their_secrets(tmp_path: Path) -> None:
    password, token = "Taxii-Passw0rd-3391", "9f8e7d6c-5b4a-4391-8d2e"
    settings = _load(
        tmp_path,
        INTEL,
        environ={"SOC_TAXII_PASSWORD": password, "OPENCTI_TOKEN": token},
    )
    cert, opencti, octi_token, drop = settings.intel
    assert (cert.type, cert.path, cert.refresh_minutes, cert.confidence, cert.enabled) == (
        "stix",
        "data/intel",
        60.0,
        70,
        True,
    )
    assert (opencti.refresh_minutes, opencti.confidence, opencti.user) == (
        15.0,
        60,
        "soc@example.org",
    )
    assert (octi_token.api_root, octi_token.collection) == ("default", "Indicators")
    assert (drop.labels, drop.enabled, drop.timeout) == (["spamhaus-drop"], False, 30.0)
    # the predefined secret and a feed's own (read from its upper-case variable)
    assert settings.secrets["taxii_password"].reveal() == password
    assert settings.secrets["opencti_token"].reveal() == token
    described = settings.describe()
    assert [feed["name"] for feed in described["intel"]] == [
        "cert",
        "opencti",
        "octi-token",
        "drop",
    ]
    assert described["intel"][1]["password_secret"] == "taxii_password"  # noqa: S105 (a name)
    assert "Query-Key-8812" not in json.dumps(described)
    assert described["secrets"]["taxii_password"] is True
    assert described["secrets"]["opencti_token"] is True
    assert described["secrets"]["taxii_token"] is False
    assert password not in json.dumps(described, default=str)
    assert token not in json.dumps(described, default=str)
    assert password not in repr(settings)
    assert {"taxii_password", "taxii_token"} <= set(SECRET_ENV)


def test_intel_secrets_come_from_the_secrets_file_too(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('opencti_token = "from-file-4410"\n', encoding="utf-8")
    config = tmp_path / "soc.toml"
    config.write_text(INTEL, encoding="utf-8")
    settings = load_settings(config, environ={}, secrets_path=secrets_file)
    assert settings.secrets["opencti_token"].reveal() == "from-file-4410"
    assert "taxii_password" not in settings.secrets


def test_unknown_intel_key_is_refused_naming_key_feed_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "[[intel]]\ntype = 'blocklist'\npath = 'x.txt'\ncollection = 'y'\n")
    message = str(err.value)
    assert "unknown key 'collection' for a blocklist feed" in message
    assert "soc.toml" in message
    assert "[[intel]] #1" in message
    with pytest.raises(ConfigError, match="unknown key 'refresh'"):
        _load(tmp_path, "[[intel]]\ntype = 'stix'\npath = 'x.json'\nrefresh = 5\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('intel = ["x"]', "[[intel]] #1: each intel feed must be a table"),
        ("intel = 3", "intel must be an array of tables ([[intel]])"),
        ("[[intel]]\nname = 'a'", "'type' is required (stix, taxii, blocklist)"),
        ("[[intel]]\ntype = 'misp'", "unknown intel feed type 'misp'"),
        ("[[intel]]\ntype = 'stix'", "a stix feed needs 'path'"),
        ("[[intel]]\ntype = 'taxii'", "a taxii feed needs 'url'"),
        ("[[intel]]\ntype = 'blocklist'", "exactly one of 'path' and 'url'"),
        (
            "[[intel]]\ntype = 'blocklist'\npath = 'a'\nurl = 'https://x.example/l'",
            "exactly one of 'path' and 'url'",
        ),
        ("[[intel]]\ntype = 'stix'\npath = 'a'\nconfidence = 101", "confidence: must be between"),
        ("[[intel]]\ntype = 'stix'\npath = 'a'\nconfidence = 'high'", "must be an integer"),
        ("[[intel]]\ntype = 'stix'\npath = 'a'\nrefresh_minutes = -1", "refresh_minutes"),
        ("[[intel]]\ntype = 'stix'\npath = 'a'\nname = 'my feed'", "name: must be letters"),
        ("[[intel]]\ntype = 'stix'\npath = 'a'\nlabels = 'x'", "must be a list"),
        ("[[intel]]\ntype = 'taxii'\nurl = 'ftp://x.example/'", "http:// or https://"),
        (
            "[[intel]]\ntype = 'taxii'\nurl = 'https://u:p@x.example/'",
            "must not carry credentials",
        ),
        (
            "[[intel]]\ntype = 'taxii'\nurl = 'https://x.example/'\ntoken_secret = 't'\n"
            "user = 'u'\npassword_secret = 'p'",
            "either user + password_secret or token_secret",
        ),
        (
            "[[intel]]\ntype = 'taxii'\nurl = 'https://x.example/'\nuser = 'u'",
            "user and password_secret go together",
        ),
        (
            "[[intel]]\ntype = 'taxii'\nurl = 'https://x.example/'\ntoken_secret = 'BAD NAME'",
            "must name a secret",
        ),
        (
            "[[intel]]\ntype = 'taxii'\nurl = 'https://x.example/'\napi_root = 'default'",
            "'api_root' is only used to find 'collection'",
        ),
        (
            "[[intel]]\ntype = 'stix'\npath = 'a'\n[[intel]]\ntype = 'stix'\npath = 'b'",
            "duplicate intel feed names: stix",
        ),
    ],
)
def test_bad_intel_tables_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert message in str(err.value)


def test_respond_section_is_validated_and_its_webhook_paths_never_shown() -> None:
    """Slack and Discord webhook URLs carry their token in the path: describe() shows the host."""
    settings = settings_from_dict(
        {
            "respond": {
                "mode": "enforce",
                "modes": {"disable_user": "dry_run"},
                "notify_url": "https://hooks.slack.com/services/T000/B000/tokensecret9876",
                "ticket_url": "https://tickets.example.org/hook/abcdef123456",
            }
        }
    )
    assert settings.respond.mode_for("nftables") == "enforce"
    assert settings.respond.mode_for("disable_user") == "dry_run"
    described = settings.describe()["respond"]
    assert described["notify_url"] == "https://hooks.slack.com/***"
    assert described["ticket_url"] == "https://tickets.example.org/***"
    assert "secret" not in str(described) and "abcdef" not in str(described)
    for bad, message in (
        ({"mode": "on"}, "must be 'dry_run' or 'enforce'"),
        ({"modes": {"nftables": "yes"}}, "must be 'dry_run' or 'enforce'"),
        ({"firewall": "pf"}, "must be one of nftables, iptables, ufw, fail2ban"),
        ({"nft_table": "x; flush ruleset"}, "letters, digits and _"),
        ({"default_ttl": "forever"}, "not a duration"),
        ({"default_ttl": "60d"}, "longer than max_ttl"),
        ({"notify_url": "file:///etc/passwd"}, "must be an http:// or https:// URL"),
        ({"max_blocks_per_hour": 0}, "must be at least 1"),
        ({"colour": "red"}, "unknown key 'colour'"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            settings_from_dict({"respond": bad})
