"""Redaction: credentials and the process's secret values never shown, logged or stored.

Two kinds of masking, both to ``***``:

- **By shape**, with no secret known in advance: the password of a URL's
  ``user:password@`` (``postgresql://soc:***@db/soc``); the value of a sensitive
  query parameter, by name and in any case (``token``, ``key``, ``api_key``,
  ``access_token``, ``password``, ``secret``, ``sig``, ``signature``, ``auth``,
  ``jwt`` and names ending in ``token``, ``key``, ``secret``, ``password``);
  ``password=…``, ``secret=…``, ``…_token=…``, ``api_key=…`` pairs anywhere in a
  text (a libpq DSN, a log line); and ``Bearer``/``Basic`` credentials.
- **By value**: every secret the process holds (API keys from the environment or
  ``secrets.toml``, passwords found in configured URLs) is masked wherever it
  shows up, in any letter case, and so is any *part* of it a provider might echo:

  * any run of at least ``PARTIAL_MIN`` (8) consecutive characters of a secret
    (compared case-insensitively) is masked: "API key AIzaSyAbc… not valid", a
    key cut to its first 10 characters, a lower-cased copy. Eight characters of
    a random key never occur in ordinary text by chance, and shorter runs occur
    in ordinary words;
  * a prefix or suffix of the secret of ``EDGE_MIN`` (6) or 7 characters is
    masked when it stands alone (no letter, digit or ``_`` right before or after
    it): the ``sk-abc1…`` / ``…wxyz90`` forms of a truncated echo, without
    touching the same letters inside a longer word;
  * a secret shorter than ``PARTIAL_MIN`` is masked only whole (and standing
    alone); one shorter than ``WHOLE_MIN`` (4) cannot be masked in free text
    without destroying it and is masked by shape only (a URL's password).

  A secret made of dictionary words (``password123``) masks those words too
  (``password authentication failed`` becomes ``*** authentication failed``): the
  rule errs on the side of hiding.

The process's secrets live in one :class:`SecretRegistry` (:func:`process_secrets`):
secrets and logs are process-wide by nature, so this is the one piece of module
state, guarded by a lock, that every error message (:class:`soc.errors.SocError`)
and every log record reads. :func:`install` fills it from the settings and makes
every log record redacted when it is created (message, exception traceback and
stack), whichever handler prints it, including handlers added later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

if TYPE_CHECKING:
    from soc.config import Settings

#: What a masked value is replaced with.
MASK: Final = "***"
#: Shortest run of a secret's characters masked anywhere it appears.
PARTIAL_MIN: Final = 8
#: Shortest prefix or suffix of a secret masked when it stands alone.
EDGE_MIN: Final = 6
#: Shortest secret masked in free text at all (shorter ones by shape only).
WHOLE_MIN: Final = 4

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
# user:password@ after a scheme. The password runs to the last "@" before the host
# ("p@ss" unencoded still counts); "/", "?", "#", quotes and spaces end it.
_USERINFO: Final = re.compile(rf"(?P<head>{_SCHEME}[^\s:/?#@'\"<>]*):(?P<password>[^\s/?#'\"<>]*)@")
# Sensitive names: any prefix before the long ones (access_token, client_secret,
# X-Amz-Signature); exactly, after a separator or camel-cased for "key" (api_key,
# apiKey, not monkey) and the short ones.
_LONG_NAMES = r"token|secret|password|passwd|credentials?|signature"
_SHORT_NAMES = r"key|apikey|sig|pwd|jwt|auth|pass"
_SENSITIVE_NAME = (
    rf"(?:[\w.\-]*(?:{_LONG_NAMES})|(?:[\w.\-]*[_.\-])?(?:{_SHORT_NAMES})"
    r"|[\w.\-]*[a-z](?-i:Key))"
)
_QUERY_NAME: Final = re.compile(_SENSITIVE_NAME, re.IGNORECASE)
_QUERY_PARAM: Final = re.compile(
    rf"(?P<name>[?&;]{_SENSITIVE_NAME}=)(?P<value>[^&#\s'\"<>]+)", re.IGNORECASE
)
# name=value in free text (a libpq DSN, a log line): only names that say "secret".
_ASSIGNMENT: Final = re.compile(
    r"(?<![\w.\-])(?P<name>[\w.\-]*(?:password|passwd|secret|token)"
    r"|(?:[\w.\-]*[_.\-])?(?:pwd|api_?key|access_?key|private_?key|secret_?key))"
    r"(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"<>()\[\]{}]+)",
    re.IGNORECASE,
)
# An Authorization header's credentials (a receiver echoing request headers).
_AUTH_HEADER: Final = re.compile(
    r"\b(?P<scheme>Bearer|Basic)(?P<space>\s+)(?P<value>(?=\S*[0-9=])[A-Za-z0-9\-._~+/]{8,}=*)",
    re.IGNORECASE,
)


class _Revealing(Protocol):
    """A :class:`soc.config.Secret` (anything that reveals a string)."""

    def reveal(self) -> str: ...


SecretLike = str | _Revealing | None


def _plain(secret: SecretLike) -> str:
    if secret is None:
        return ""
    return secret if isinstance(secret, str) else secret.reveal()


def _forms(secret: SecretLike) -> set[str]:
    """The forms of a secret worth masking: trimmed, and percent-encoded (as in a URL)."""
    value = _plain(secret).strip()
    forms = {value, quote(value, safe="")}
    return {f for f in forms if len(f) >= WHOLE_MIN and f != MASK}


# --- masking by value -------------------------------------------------------------------


class _Matcher:
    """Finds every part of a fixed set of secrets a text shows (see the module's rules)."""

    def __init__(self, values: tuple[str, ...]) -> None:
        windows: set[str] = set()
        standalone: set[str] = set()
        for value in values:
            if len(value) >= PARTIAL_MIN:
                windows.update(
                    value[i : i + PARTIAL_MIN].lower() for i in range(len(value) - PARTIAL_MIN + 1)
                )
                for n in range(EDGE_MIN, PARTIAL_MIN):
                    standalone.update((value[:n], value[-n:]))
            else:
                standalone.add(value)
        # A lookahead finds every starting position, overlapping ones included.
        self._windows = (
            re.compile(
                "(?=(" + "|".join(re.escape(w) for w in sorted(windows)) + "))", re.IGNORECASE
            )
            if windows
            else None
        )
        # Longest first: the alternation takes the first that matches.
        ordered = sorted(standalone, key=lambda s: (-len(s), s))
        self._standalone = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(s) for s in ordered) + r")(?!\w)",
                re.IGNORECASE,
            )
            if ordered
            else None
        )

    def mask(self, text: str) -> str:
        spans: list[tuple[int, int]] = []
        if self._windows is not None:
            spans.extend((m.start(), m.start() + PARTIAL_MIN) for m in self._windows.finditer(text))
        if self._standalone is not None:
            spans.extend(m.span() for m in self._standalone.finditer(text))
        if not spans:
            return text
        spans.sort()
        out: list[str] = []
        position = 0
        start, end = spans[0]
        for s, e in spans[1:]:
            if s <= end:  # overlapping or touching: one masked run
                end = max(end, e)
                continue
            out.extend((text[position:start], MASK))
            position, start, end = end, s, e
        out.extend((text[position:start], MASK, text[end:]))
        return "".join(out)


@functools.lru_cache(maxsize=64)
def _matcher(values: tuple[str, ...]) -> _Matcher:
    return _Matcher(values)


class SecretRegistry:
    """The secret values a process must never show; safe to share between threads."""

    def __init__(self, secrets: Iterable[SecretLike] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self.add(*secrets)

    def add(self, *secrets: SecretLike) -> None:
        """Remember these secrets (too-short and empty ones are ignored)."""
        found: set[str] = set()
        for secret in secrets:
            found |= _forms(secret)
        if found - self._values:
            with self._lock:
                self._values = self._values | found

    def add_url(self, url: str) -> None:
        """Remember the password and the sensitive query values in ``url``."""
        self.add(*url_secrets(url))

    def add_settings(self, settings: Settings) -> None:
        """Remember the settings' secrets and every credential in a configured URL."""
        self.add(*settings.secrets.values())
        for text in _strings(_configured_values(settings)):
            if "://" in text:
                self.add_url(text)

    def values(self) -> tuple[str, ...]:
        """The remembered values, sorted."""
        return tuple(sorted(self._values))

    def clear(self) -> None:
        """Forget every secret (tests)."""
        with self._lock:
            self._values = frozenset()

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretRegistry({len(self)} secrets)"


_PROCESS: Final = SecretRegistry()


def process_secrets() -> SecretRegistry:
    """The process's registry, read by every error message and (once installed) every log."""
    return _PROCESS


def url_secrets(url: str) -> list[str]:
    """The credentials in ``url``: its password (as written and decoded), sensitive query values.

    The password is taken both up to the host's ``@`` (an unencoded ``@`` in it)
    and the way SQLAlchemy reads it, up to the first ``@`` (an unencoded ``/``).
    """
    found: list[str] = []
    match = _USERINFO.search(url)
    if match:
        found.append(match["password"])
    _, scheme, rest = url.partition("://")
    rest = rest if scheme else url  # "user:password@host" without a scheme
    sqlalchemy_style = re.match(r"[^:/]*:([^@]*)@", rest)
    if sqlalchemy_style:
        found.append(sqlalchemy_style[1])
    with contextlib.suppress(ValueError):
        query = urlsplit(url).query
        found.extend(
            value
            for name, value in parse_qsl(query, keep_blank_values=False)
            if _QUERY_NAME.fullmatch(name)
        )
    found.extend([unquote(f) for f in found])
    return [f for f in dict.fromkeys(found) if f and f != MASK]


# --- masking text -------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` and sensitive query values masked."""
    return _QUERY_PARAM.sub(_masked_value, _USERINFO.sub(_masked_userinfo, url))


def redact(
    text: str, secrets: Iterable[SecretLike] = (), *, registry: SecretRegistry | None = None
) -> str:
    """``text`` with URL credentials, secret-looking ``name=value`` pairs and secrets masked.

    The secrets masked are ``secrets`` and those in ``registry`` (the process's
    by default), each with its partial and case-changed echoes (see the module).
    """
    if not text:
        return text
    text = redact_url(text)
    text = _ASSIGNMENT.sub(_masked_assignment, text)
    text = _AUTH_HEADER.sub(_masked_header, text)
    known = set((registry if registry is not None else _PROCESS)._values)
    for secret in secrets:
        known |= _forms(secret)
    if not known:
        return text
    return _matcher(tuple(sorted(known))).mask(text)


def redact_data(value: Any, secrets: Iterable[SecretLike] = ()) -> Any:
    """``value`` (dicts, lists, strings, anything else as is) with every string redacted."""
    listed = tuple(secrets)
    if isinstance(value, str):
        return redact(value, listed)
    if isinstance(value, Mapping):
        return {key: redact_data(item, listed) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item, listed) for item in value]
    return value


def _masked_userinfo(match: re.Match[str]) -> str:
    if not match["password"] or match["password"] == MASK:
        return match[0]
    return f"{match['head']}:{MASK}@"


def _masked_value(match: re.Match[str]) -> str:
    return match["name"] + MASK


def _masked_assignment(match: re.Match[str]) -> str:
    value = match["value"]
    if value.strip("'\"") == MASK:
        return match[0]
    return match["name"] + match["eq"] + MASK


def _masked_header(match: re.Match[str]) -> str:
    return match["scheme"] + match["space"] + MASK


def _configured_values(settings: Settings) -> list[Any]:
    """The values of every setting that may hold a URL."""
    values: list[Any] = [settings.store.url, dataclasses.asdict(settings.analyze)]
    values.extend(export.options for export in settings.exports)
    for source in settings.sources:
        options = source.options
        if dataclasses.is_dataclass(options) and not isinstance(options, type):
            values.append(dataclasses.asdict(options))
    return values


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


# --- logging ------------------------------------------------------------------------------


def redact_record(record: logging.LogRecord, registry: SecretRegistry | None = None) -> None:
    """Redact ``record`` in place: its message, exception traceback and stack.

    The message is formatted now (its arguments are dropped when anything was
    masked). A traceback is rendered now into ``exc_text``, which formatters
    print instead of rendering their own; when it had something to mask,
    ``exc_info`` is dropped too, so no handler renders the original again.
    """
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when it is emitted
        return
    clean = redact(message, registry=registry)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        rendered = logging.Formatter().formatException(record.exc_info)
        clean = redact(rendered, registry=registry)
        record.exc_text = clean
        if clean != rendered:
            record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text, registry=registry)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, registry=registry)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record it sees (it drops none).

    Put it on a *handler*: a filter on a logger sees only the records logged to
    that very logger, not those of its children. :func:`install` covers every
    record instead, from any logger to any handler.
    """

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.registry)
        return True


class _RedactingFactory:
    """A log record factory that redacts each record as it is made."""

    def __init__(
        self, inner: Callable[..., logging.LogRecord], registry: SecretRegistry | None
    ) -> None:
        self.inner = inner
        self.registry = registry

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        redact_record(record, self.registry)
        return record


_INSTALL_LOCK: Final = threading.Lock()


def install(
    settings: Settings | None = None, *, registry: SecretRegistry | None = None
) -> SecretRegistry:
    """Redact every log record of the process from now on, knowing ``settings``' secrets.

    Call it once at start, after the settings are loaded (the CLI does; the
    command center's server must). The secrets (API keys, passwords in the
    store URL, export hosts and webhook URLs) go into ``registry`` (the
    process's by default), which every :class:`~soc.errors.SocError` message
    also reads. Records are redacted where they are created (a log record
    factory), so handlers added later (Streamlit's, a test's) print them
    redacted too. Calling it again adds the new settings' secrets.
    """
    target = registry if registry is not None else _PROCESS
    if settings is not None:
        target.add_settings(settings)
    with _INSTALL_LOCK:
        current = logging.getLogRecordFactory()
        if isinstance(current, _RedactingFactory):
            current.registry = registry
        else:
            logging.setLogRecordFactory(_RedactingFactory(current, registry))
    return target


def uninstall() -> None:
    """Stop redacting log records (what :func:`install` did; the registry keeps its secrets)."""
    with _INSTALL_LOCK:
        current = logging.getLogRecordFactory()
        if isinstance(current, _RedactingFactory):
            logging.setLogRecordFactory(current.inner)


@contextlib.contextmanager
def installed(
    settings: Settings | None = None, *, registry: SecretRegistry | None = None
) -> Iterator[SecretRegistry]:
    """:func:`install` for the duration of a block, as it was before afterwards."""
    before = logging.getLogRecordFactory()
    previous = before.registry if isinstance(before, _RedactingFactory) else None
    target = install(settings, registry=registry)
    try:
        yield target
    finally:
        if isinstance(before, _RedactingFactory):
            before.registry = previous
        else:
            uninstall()


__all__ = [
    "EDGE_MIN",
    "MASK",
    "PARTIAL_MIN",
    "WHOLE_MIN",
    "RedactingFilter",
    "SecretRegistry",
    "install",
    "installed",
    "process_secrets",
    "redact",
    "redact_data",
    "redact_record",
    "redact_url",
    "uninstall",
    "url_secrets",
]
