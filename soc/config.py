"""Configuration: defaults in code, one ``soc.toml``, ``SOC_…`` environment overrides.

Every section is a dataclass validated before anything runs: an unknown key or a
value of the wrong type is refused with a message naming the key and the file.
Environment variables override the file: ``SOC_STORE__URL`` sets ``[store] url``
(section and key joined by a double underscore; values are read as TOML when they
parse as TOML, else as plain strings). Secrets (API keys) come only from the
environment or ``.streamlit/secrets.toml`` and are never logged or printed.

(Why past 600 lines: the loader, the environment overrides and the one validation
walk that names the key and the file for every section belong together, with the
sections no stage owns (store, engine, console, sources, exports); the others'
dataclasses live with their stages.)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from soc.analyze.base import AnalyzeConfig
from soc.api.base import ApiConfig
from soc.detect.base import DetectConfig
from soc.enrich.base import INTEL_KEYS, IntelSpec
from soc.errors import ConfigError
from soc.parse.base import ParseConfig
from soc.redact import redact_data
from soc.respond.base import RespondConfig
from soc.similar.base import SimilarConfig
from soc.window.base import WindowConfig

#: Where ``soc`` looks for its configuration when ``--config``/``SOC_CONFIG`` are absent.
DEFAULT_CONFIG_PATH = Path("soc.toml")
DEFAULT_SECRETS_PATH = Path(".streamlit/secrets.toml")

#: Secret names and the environment variables each is read from, first found wins.
#: A secret an ``[[intel]]`` feed names that is not listed here (``password_secret =
#: "opencti_token"``) is read from the variable of the same name in upper case
#: (``OPENCTI_TOKEN``), else from ``secrets.toml``.
SECRET_ENV: dict[str, tuple[str, ...]] = {
    "gemini_api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai_api_key": ("SOC_OPENAI_API_KEY", "OPENAI_API_KEY"),
    "elasticsearch_api_key": ("SOC_ELASTICSEARCH_API_KEY", "ELASTIC_API_KEY"),
    "webhook_token": ("SOC_WEBHOOK_TOKEN",),
    "taxii_password": ("SOC_TAXII_PASSWORD",),
    "taxii_token": ("SOC_TAXII_TOKEN",),
}


@dataclass(slots=True)
class StoreConfig:
    """Where incidents, aggregates and checkpoints live (SQLAlchemy URL)."""

    url: str = "sqlite:///data/soc.db"
    aggregates_retention_days: float = 30.0

    def __post_init__(self) -> None:
        if not self.aggregates_retention_days > 0:
            raise ConfigError("must be more than 0", where="aggregates_retention_days")


@dataclass(slots=True)
class EngineConfig:
    """How the engine loop runs.

    ``batch_lines``: lines parsed per batch, and committed per store
    transaction by a replay (a live engine commits by time: ``commit_seconds``).
    ``idle_sleep``: seconds the live loop waits when no source had anything.
    ``tick_seconds``: how often a live engine moves event time on while its
    sources are quiet (closing windows and quiet campaigns) and looks for a
    threshold tuned at run time. ``export_interval``: seconds between export
    passes of the delivery worker; ``export_drain_seconds``: how long a replay
    or a shutdown waits for queued alerts to be delivered before leaving them
    in the outbox for the next run. ``store_retry_seconds``: how long a batch
    whose commit failed because the database was unreachable (a restart) is
    retried, with backoff, before the engine stops with an error; nothing is
    lost meanwhile (the batch is committed whole or the source re-reads it).
    Reads are retried the same way. ``commit_seconds``: how often at most a
    live engine (``soc run``, the command center following its sources)
    commits while lines keep coming; each commit carries its windows' and
    detector's state, so a restart continues where the last one left off.
    """

    batch_lines: int = 20_000
    idle_sleep: float = 0.25
    tick_seconds: float = 1.0
    export_interval: float = 2.0
    export_drain_seconds: float = 30.0
    store_retry_seconds: float = 300.0
    commit_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_lines < 1:
            raise ConfigError("must be at least 1", where="batch_lines")
        for name in ("idle_sleep", "export_drain_seconds", "store_retry_seconds", "commit_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError("must not be negative", where=name)
        for name in ("tick_seconds", "export_interval"):
            if not getattr(self, name) > 0:
                raise ConfigError("must be more than 0", where=name)


@dataclass(slots=True)
class ConsoleConfig:
    """The command center's sign-in and sessions (``soc.app.server`` enforces them).

    ``allow_insecure``: serve sign-in on an address beyond loopback without TLS
    (``server.sslCertFile``); leave false unless a TLS proxy on another machine
    fronts the app. ``session_idle_minutes`` / ``session_hours``: a signed-in
    session ends after this long without a page action, and this long after
    sign-in whatever happens. ``sign_in_*``: per client address, failed sign-ins
    within ``sign_in_window_minutes`` slow every further attempt (doubling delays
    from ``sign_in_delay_seconds``) and, at ``sign_in_lockout_failures``, refuse it
    for ``sign_in_lockout_minutes``; ``sign_in_global_per_minute`` bounds the
    password checks of all clients together. ``trusted_proxies``: addresses of
    reverse proxies whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed
    (the client address then comes from the proxy). ``max_upload_mb``: the largest
    log a signed-in analyst may upload for replay (nothing is accepted before
    sign-in).
    """

    allow_insecure: bool = False
    session_idle_minutes: float = 30.0
    session_hours: float = 12.0
    sign_in_window_minutes: float = 15.0
    sign_in_delay_seconds: float = 1.0
    sign_in_lockout_failures: int = 10
    sign_in_lockout_minutes: float = 15.0
    sign_in_global_per_minute: int = 60
    trusted_proxies: list[str] = field(default_factory=list)
    max_upload_mb: int = 200

    def __post_init__(self) -> None:
        for name in (
            "session_idle_minutes",
            "session_hours",
            "sign_in_window_minutes",
            "sign_in_lockout_minutes",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError("must be more than 0", where=name)
        if self.sign_in_delay_seconds < 0:
            raise ConfigError("must not be negative", where="sign_in_delay_seconds")
        for name in ("sign_in_lockout_failures", "sign_in_global_per_minute", "max_upload_mb"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", where=name)
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(
                    f"not an address or network: {entry!r}", where="trusted_proxies"
                ) from None


@dataclass(slots=True)
class SourceSpec:
    """One configured source: its name, type, how to parse it, and its own options."""

    name: str
    type: str
    parse: ParseConfig
    options: Any  # the source type's own config dataclass instance


@dataclass(slots=True)
class ExportSpec:
    """One configured export sink: its name, type and its own options (validated)."""

    name: str
    type: str
    options: dict[str, Any]


class Secret:
    """A secret value that never shows itself in logs, reprs or tracebacks.

    Where its value could still be echoed back (a provider quoting the key in an
    error), :func:`soc.redact.install` registers it so every message, log record
    and stored error masks it, partial and case-changed copies included.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call only where it is sent to its service."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(slots=True)
class Settings:
    """Everything the product is configured with."""

    store: StoreConfig = field(default_factory=StoreConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    similar: SimilarConfig = field(default_factory=SimilarConfig)
    respond: RespondConfig = field(default_factory=RespondConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    sources: list[SourceSpec] = field(default_factory=list)
    exports: list[ExportSpec] = field(default_factory=list)
    intel: list[IntelSpec] = field(default_factory=list)
    secrets: dict[str, Secret] = field(default_factory=dict)
    path: Path | None = None  # the file these came from, if any

    def describe(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets shown only as present.

        Every value is redacted (:func:`soc.redact.redact_data`): a password in the
        store URL or an export host (``user:***@``), a sensitive query parameter of
        a webhook or endpoint URL (``?token=***``), and any secret value or echo of
        one a setting happens to hold.
        """
        described = {
            "file": str(self.path) if self.path else None,
            "store": dataclasses.asdict(self.store),
            "engine": dataclasses.asdict(self.engine),
            "parse": dataclasses.asdict(self.parse),
            "window": dataclasses.asdict(self.window),
            "detect": dataclasses.asdict(self.detect),
            "analyze": dataclasses.asdict(self.analyze),
            "console": dataclasses.asdict(self.console),
            "similar": dataclasses.asdict(self.similar),
            "respond": _respond_described(self.respond),
            "api": dataclasses.asdict(self.api),
            "exports": [{"name": e.name, "type": e.type, **e.options} for e in self.exports],
            "intel": [dataclasses.asdict(spec) for spec in self.intel],
            "sources": [
                {
                    "name": s.name,
                    "type": s.type,
                    **dataclasses.asdict(s.parse),
                    **dataclasses.asdict(s.options),
                }
                for s in self.sources
            ],
            "secrets": {name: name in self.secrets for name in secret_names(self.intel)},
        }
        redacted: dict[str, Any] = redact_data(described, self.secrets.values())
        return redacted


def _respond_described(config: RespondConfig) -> dict[str, Any]:
    """``[respond]`` as data, its webhook URLs as scheme and host only (Slack and
    Discord put the token in the path, which no shape-based redaction can tell)."""
    out = dataclasses.asdict(config)
    for name in ("notify_url", "ticket_url"):
        if out[name]:
            parts = urlsplit(out[name])
            out[name] = f"{parts.scheme}://{parts.hostname or ''}/***"
    return out


_SECTIONS: dict[str, type[Any]] = {
    "store": StoreConfig,
    "engine": EngineConfig,
    "parse": ParseConfig,
    "window": WindowConfig,
    "detect": DetectConfig,
    "analyze": AnalyzeConfig,
    "console": ConsoleConfig,
    "similar": SimilarConfig,
    "respond": RespondConfig,
    "api": ApiConfig,
}
_SOURCE_COMMON = ("name", "type")
_LISTS = ("sources", "exports", "intel")


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    secrets_path: Path | None = None,
) -> Settings:
    """Load the configuration: code defaults, then the file, then the environment.

    ``path`` defaults to ``$SOC_CONFIG`` or ``./soc.toml``; a missing default file is
    fine (defaults apply), a missing file that was asked for is an error.
    """
    env = os.environ if environ is None else environ
    explicit = path is not None or "SOC_CONFIG" in env
    config_path = path or Path(env.get("SOC_CONFIG", str(DEFAULT_CONFIG_PATH)))
    data: dict[str, Any] = {}
    where = str(config_path)
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", where=where) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", where=where) from exc
    elif explicit:
        raise ConfigError("configuration file not found", where=where)
    _apply_env_overrides(data, env)
    settings = settings_from_dict(data, where=where)
    settings.path = config_path if config_path.exists() else None
    settings.secrets = load_secrets(
        env, secrets_path or DEFAULT_SECRETS_PATH, extra=secret_names(settings.intel)
    )
    return settings


def settings_from_dict(data: Mapping[str, Any], *, where: str = "soc.toml") -> Settings:
    """Validate a parsed configuration document into ``Settings``."""
    settings = Settings()
    # Sections first: sources inherit the [parse] defaults wherever they appear.
    for key, value in sorted(data.items(), key=lambda kv: kv[0] == "sources"):
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table", where=where)
            setattr(settings, key, build_dataclass(_SECTIONS[key], value, f"{where}: [{key}]"))
        elif key == "sources":
            if not isinstance(value, list):
                raise ConfigError("sources must be an array of tables ([[sources]])", where=where)
            settings.sources = [
                _source_spec(item, settings.parse, f"{where}: [[sources]] #{i + 1}")
                for i, item in enumerate(value)
            ]
        elif key == "exports":
            if not isinstance(value, list):
                raise ConfigError("exports must be an array of tables ([[exports]])", where=where)
            settings.exports = [
                _export_spec(item, f"{where}: [[exports]] #{i + 1}") for i, item in enumerate(value)
            ]
        elif key == "intel":
            if not isinstance(value, list):
                raise ConfigError("intel must be an array of tables ([[intel]])", where=where)
            settings.intel = [
                _intel_spec(item, f"{where}: [[intel]] #{i + 1}") for i, item in enumerate(value)
            ]
        else:
            known = ", ".join([*_SECTIONS, *_LISTS])
            raise ConfigError(f"unknown section {key!r} (known: {known})", where=where)
    for kind, specs in (
        ("source", settings.sources),
        ("export", settings.exports),
        ("intel feed", settings.intel),
    ):
        names = [s.name for s in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"duplicate {kind} names: {', '.join(duplicates)}", where=where)
    return settings


def _typed_table(
    item: Any, where: str, what: str, types: str, config_class: Callable[[str], type[Any]]
) -> tuple[str, str, type[Any]]:
    """A ``[[sources]]``/``[[exports]]`` table's type, name and options class, checked."""
    if not isinstance(item, dict):
        raise ConfigError(f"each {what} must be a table", where=where)
    type_name = item.get("type")
    if not isinstance(type_name, str):
        raise ConfigError(f"'type' is required ({types})", where=where)
    try:
        config_cls = config_class(type_name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), where=f"{where} type") from exc
    name = item.get("name", type_name)
    if not isinstance(name, str) or not name:
        raise ConfigError("'name' must be a non-empty string", where=f"{where} name")
    if name.startswith("("):
        # "(pipeline)", "(engine)", "(api)": the store's own counters and checkpoints.
        raise ConfigError("names starting with '(' are reserved", where=f"{where} name")
    return type_name, name, config_cls


def _export_spec(item: Any, where: str) -> ExportSpec:
    # Imported here: the sink modules pull in their HTTP clients.
    from soc.export import sink_classes

    type_name, name, config_cls = _typed_table(
        item, where, "export", "elasticsearch, webhook", lambda t: sink_classes(t)[0]
    )
    options = {k: v for k, v in item.items() if k not in _SOURCE_COMMON}
    build_dataclass(config_cls, options, f"{where} ({type_name})")  # refuse bad options now
    return ExportSpec(name=name, type=type_name, options=options)


def _intel_spec(item: Any, where: str) -> IntelSpec:
    if not isinstance(item, dict):
        raise ConfigError("each intel feed must be a table", where=where)
    type_name = item.get("type")
    types = ", ".join(INTEL_KEYS)
    if not isinstance(type_name, str):
        raise ConfigError(f"'type' is required ({types})", where=where)
    if type_name not in INTEL_KEYS:
        raise ConfigError(
            f"unknown intel feed type {type_name!r} (known: {types})", f"{where} type"
        )
    allowed = INTEL_KEYS[type_name]
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed))
        raise ConfigError(
            f"unknown key {unknown[0]!r} for a {type_name} feed (known keys: {known})",
            where=f"{where} ({type_name})",
        )
    spec: IntelSpec = build_dataclass(
        IntelSpec, {"name": type_name, **item}, f"{where} ({type_name})"
    )
    return spec


def secret_names(intel: Iterable[IntelSpec] = ()) -> list[str]:
    """Every secret the product reads: ``SECRET_ENV``'s, then those ``intel`` feeds name."""
    names = dict.fromkeys(SECRET_ENV)
    for spec in intel:
        names.update(dict.fromkeys(spec.secret_names))
    return list(names)


def _source_spec(item: Any, parse_defaults: ParseConfig, where: str) -> SourceSpec:
    # Imported here: config is shared by every stage and must not pull in all sources.
    from soc.acquire import source_classes

    type_name, name, config_cls = _typed_table(
        item,
        where,
        "source",
        "file, replay, syslog, journal, stdin",
        lambda t: source_classes(t)[0],
    )
    parse_fields = {f.name for f in dataclasses.fields(ParseConfig)}
    parse_values = {k: v for k, v in item.items() if k in parse_fields}
    option_values = {
        k: v for k, v in item.items() if k not in parse_fields and k not in _SOURCE_COMMON
    }
    parse = build_dataclass(
        ParseConfig, {**dataclasses.asdict(parse_defaults), **parse_values}, where
    )
    options = build_dataclass(config_cls, option_values, f"{where} ({type_name})")
    return SourceSpec(name=name, type=type_name, parse=parse, options=options)


#: The name of the source that reads the API's intake spool.
INTAKE_SOURCE = "api-intake"


def live_sources(settings: Settings) -> list[SourceSpec]:
    """The sources a live engine follows: the configured ones, plus the API's intake spool.

    The spool (``[api] intake_path``) is added as the ``file`` source
    ``api-intake`` (format ``ecs_json``, from the beginning) when ``[api]
    follow_intake`` is on and no configured file source reads it already.
    """
    sources = list(settings.sources)
    api = settings.api
    if not api.follow_intake:
        return sources
    spool = Path(api.intake_path).expanduser().resolve()
    for spec in sources:
        for pattern in getattr(spec.options, "paths", ()):
            if fnmatch.fnmatchcase(str(spool), str(Path(pattern).expanduser().resolve())):
                return sources
    if any(spec.name == INTAKE_SOURCE for spec in sources):
        raise ConfigError(
            f"a source is named {INTAKE_SOURCE!r} but does not read [api] intake_path "
            f"({api.intake_path}): rename it, or set [api] follow_intake = false",
            where="[[sources]]",
        )
    item = {
        "name": INTAKE_SOURCE,
        "type": "file",
        "paths": [str(spool)],
        "format": "ecs_json",
        "start_at": "beginning",
    }
    sources.append(_source_spec(item, settings.parse, "[api] intake_path"))
    return sources


def build_dataclass(cls: type[Any], values: Mapping[str, Any], where: str) -> Any:
    """Build ``cls`` from ``values``, refusing unknown keys and values of the wrong type.

    Errors name the key and ``where`` (the file and section). A ``ValueError`` or
    ``ConfigError`` raised by the dataclass's own ``__post_init__`` is reported the
    same way.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown key {unknown[0]!r} (known keys: {known})", where=where)
    kwargs = {
        key: _check_value(value, hints[key], f"{where} {key}") for key, value in values.items()
    }
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(exc.message, where=f"{where} {exc.where or ''}".rstrip()) from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc), where=where) from exc


def _check_value(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(value, option, where)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError("; or ".join(errors), where=where)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"must be one of {choices}, got {value!r}", where=where)
        return value
    if origin is list:
        (item_hint,) = get_args(hint) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"must be a list, got {value!r}", where=where)
        return [_check_value(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"must be a table, got {value!r}", where=where)
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}", where=where)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"must be an integer, got {value!r}", where=where)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"must be a number, got {value!r}", where=where)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, got {value!r}", where=where)
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"must be a table, got {value!r}", where=where)
        return build_dataclass(hint, value, where)
    raise ConfigError(f"unsupported setting type {hint!r}", where=where)


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, raw in env.items():
        if not name.startswith("SOC_") or "__" not in name:
            continue
        section, _, key = name[4:].partition("__")
        section, key = section.lower(), key.lower()
        if section not in _SECTIONS:
            known = ", ".join(f"SOC_{s.upper()}__…" for s in _SECTIONS)
            raise ConfigError(f"unknown section {section!r} (known: {known})", where=name)
        data.setdefault(section, {})[key] = _env_value(raw)


def _env_value(raw: str) -> Any:
    # Read the value as TOML when it is one (numbers, booleans, lists), else as text.
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def load_secrets(
    env: Mapping[str, str], secrets_path: Path, *, extra: Iterable[str] = ()
) -> dict[str, Secret]:
    """API keys from the environment, else from Streamlit's ``secrets.toml``.

    ``extra``: more secret names (those ``[[intel]]`` feeds name), each read from
    the variable of its name in upper case when ``SECRET_ENV`` does not list it.
    """
    file_values: dict[str, Any] = {}
    if secrets_path.exists():
        try:
            file_values = tomllib.loads(secrets_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError) as exc:
            # The message names the file and the reason, never the content.
            raise ConfigError(
                f"cannot read secrets: {type(exc).__name__}", where=str(secrets_path)
            ) from None
    secrets: dict[str, Secret] = {}
    wanted = dict(SECRET_ENV)
    for name in extra:
        wanted.setdefault(name, (name.upper(),))
    for name, env_names in wanted.items():
        for env_name in env_names:
            if env.get(env_name):
                secrets[name] = Secret(env[env_name])
                break
        else:
            for key in (name, name.upper(), *env_names):
                value = file_values.get(key)
                if isinstance(value, str) and value:
                    secrets[name] = Secret(value)
                    break
    return secrets
