"""One error root for the whole product, carrying where the error came from."""

from __future__ import annotations

from soc.redact import redact


class SocError(Exception):
    """Base class of every error the product raises on purpose.

    ``where`` names the place the error is about (a file and key, a source, a
    line number) so that the message a user sees says what to fix. Both are
    redacted when the error is made (:func:`soc.redact.redact`: URL credentials,
    secret-looking ``name=value`` pairs, the process's secrets and their echoes):
    an error's text reaches the terminal, the browser, the logs and the store.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        message = redact(message)
        where = redact(where) if where else where
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(SocError):
    """A configuration file, key or value that is refused."""


class SourceError(SocError):
    """A log source that cannot be opened or read."""


class ParseError(SocError):
    """A parser or format that cannot be used (not a bad line: those are counted)."""


class StoreError(SocError):
    """The store cannot be opened, migrated or written.

    ``transient``: the database was unreachable or dropped the connection (a
    restart, a network cut), so the same write may succeed if tried again.
    """

    def __init__(self, message: str, where: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message, where)
        self.transient = transient
