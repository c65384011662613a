"""What the REST API is made of: the ``[api]`` settings, scopes and its error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from soc.errors import ConfigError, SocError

#: What a token may do: read incidents and figures, change them and run playbooks, send alerts.
READ: Final = "read"
RESPOND: Final = "respond"
INTAKE: Final = "intake"
SCOPES: Final = (READ, RESPOND, INTAKE)

#: A token's name: it is shown in the audit log as ``api:NAME``.
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


class ApiError(SocError):
    """A token, a request or an API setting that is refused."""


@dataclass(slots=True)
class ApiConfig:
    """The REST API (``soc api serve``): where it listens, where intake goes, its limits.

    ``host``/``port``: the default address (``soc api serve --host/--port`` win);
    anything beyond loopback needs ``tls_cert`` and ``tls_key`` or
    ``--allow-insecure-bind``. ``intake_path``: the spool file the intake routes
    append ECS lines to (follow it with a ``file`` source, format ``ecs_json``).
    ``max_body_bytes``/``max_events``: an intake request past either is refused
    (413). ``request_log_days``: requests older than this leave the request log;
    ``intake_ids_days``: how long an alert id is remembered as seen (a repeat
    after that is taken again). ``metrics_public``: serve ``/metrics`` without a token (default: a
    ``read`` token is needed). ``console``: the command center's server also
    serves the API under ``/api`` (same port, same runtime, same tokens).
    """

    host: str = "127.0.0.1"
    port: int = 8600
    tls_cert: str = ""
    tls_key: str = ""
    intake_path: str = "data/intake/ecs.jsonl"
    max_body_bytes: int = 1_048_576
    max_events: int = 1000
    metrics_public: bool = False
    console: bool = True
    follow_intake: bool = True
    request_log_days: int = 90
    intake_ids_days: int = 30

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ConfigError("must not be empty", where="host")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"must be 0-65535, got {self.port}", where="port")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together", where="tls_cert")
        if not self.intake_path.strip():
            raise ConfigError("must not be empty", where="intake_path")
        if self.max_body_bytes < 1024:
            raise ConfigError(
                f"must be at least 1024, got {self.max_body_bytes}", where="max_body_bytes"
            )
        if self.max_events < 1:
            raise ConfigError(f"must be at least 1, got {self.max_events}", where="max_events")
        for key in ("request_log_days", "intake_ids_days"):
            if getattr(self, key) < 1:
                raise ConfigError(f"must be at least 1, got {getattr(self, key)}", where=key)


__all__ = ["INTAKE", "READ", "RESPOND", "SCOPES", "TOKEN_NAME", "ApiConfig", "ApiError"]
