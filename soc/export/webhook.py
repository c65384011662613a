"""Generic JSON webhook sink: one ECS alert per HTTP POST, standard library only.

Each document is POSTed on its own (not as an array), so that the result of each
is known and a receiver that fails on one alert does not hold the others back.
The body is the ECS alert from :func:`soc.export.base.to_ecs_alert` without its
``_id``; headers carry ``X-SOC-Alert-Id`` (``soc-<incident id>``, the same for
every update of an incident) and ``Idempotency-Key`` (that id plus a digest of
the content: a retry of the same update repeats it, so a receiver can drop
duplicates). An optional secret token goes in one header (``Authorization:
Bearer …`` by default). Any 2xx is success; 408, 429 and 5xx, timeouts and
refused connections are retried from the outbox with backoff; other statuses
are kept and retried at the longest backoff.

Redirects are never followed: a 3xx is a failed delivery. Following one would
send the alert, and the token, to wherever the first server pointed, and
urllib would also turn the POST into a GET.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from soc import __version__
from soc.config import Secret
from soc.errors import ConfigError
from soc.export.base import (
    DeliveryResult,
    DocumentResult,
    HealthStatus,
    RetryPolicy,
    check_retry_settings,
    content_digest,
    is_retryable_status,
)
from soc.redact import SecretLike, redact, redact_url, url_secrets

_log = logging.getLogger(__name__)

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
#: How much of a response body is read (and at most 200 characters of it quoted in errors).
_MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(slots=True)
class WebhookConfig:
    """Where alerts are POSTed as JSON, and how.

    ``url``: an ``http://`` or ``https://`` URL. ``timeout``: seconds per request.
    ``token_secret``: the name of a secret whose value is sent as
    ``token_header: token_prefix + value`` (empty = no token). ``latest_only``:
    when several updates of an incident are waiting, send only the newest.
    ``verify_tls``/``ca_certs``: certificate checking for https. ``batch_size``
    and ``backoff_*``: outbox batching and retry backoff.
    """

    url: str = ""
    timeout: float = 10.0
    token_secret: str = ""
    token_header: str = "Authorization"  # noqa: S105 (a header name)
    token_prefix: str = "Bearer "  # noqa: S105 (the scheme word before the token)
    latest_only: bool = True
    verify_tls: bool = True
    ca_certs: str = ""
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    batch_size: int = 100

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"must be an http:// or https:// URL, not {self.url!r}", "url")
        if parts.username or parts.password:
            raise ConfigError("must not carry credentials: use token_secret", "url")
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(f"has an invalid port: {self.url!r}", "url") from None
        if not 0 < self.timeout <= 300:
            raise ConfigError("must be between 0 and 300 seconds", where="timeout")
        if not _HEADER_NAME.match(self.token_header):
            raise ConfigError(
                f"not a valid HTTP header name: {self.token_header!r}", "token_header"
            )
        if any(ch in self.token_prefix for ch in "\r\n\0"):
            raise ConfigError("must not contain line breaks", where="token_prefix")
        check_retry_settings(self.backoff_base, self.backoff_max, self.batch_size)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Makes every 3xx an ``HTTPError`` instead of a new request somewhere else."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class WebhookSink:
    """POSTs each ECS alert as JSON to one URL."""

    def __init__(
        self,
        config: WebhookConfig,
        *,
        name: str = "webhook",
        secrets: Mapping[str, Secret] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.latest_only = config.latest_only
        self.retry = RetryPolicy(config.backoff_base, config.backoff_max)
        self.batch_size = config.batch_size
        self._token: Secret | None = None
        if config.token_secret:
            token = (secrets or {}).get(config.token_secret)
            if token is None:
                raise ConfigError(
                    f"secret {config.token_secret!r} is not set", where="token_secret"
                )
            if any(ch in token.reveal() for ch in "\r\n\0"):
                raise ConfigError(
                    f"secret {config.token_secret!r} contains a line break", "token_secret"
                )
            self._token = token
        #: What no error may show: the token, and any secret query value of the URL.
        self._secrets: list[SecretLike] = [self._token, *url_secrets(config.url)]
        handlers: list[urllib.request.BaseHandler] = [_RefuseRedirects()]
        if urlsplit(config.url).scheme == "https":
            context = ssl.create_default_context(cafile=config.ca_certs or None)
            if not config.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, url={redact_url(self.config.url)!r})"

    def deliver(self, documents: Sequence[Mapping[str, Any]]) -> DeliveryResult:
        """POST each document; after a failure with no response, the rest are not tried."""
        results: list[DocumentResult] = []
        for index, document in enumerate(documents):
            result = self._post(document)
            results.append(result)
            if not result.ok and result.status is None:
                # The endpoint is unreachable: trying the rest would only wait out
                # one timeout each.
                skipped = DocumentResult(
                    ok=False, status=None, error=f"not attempted: {result.error}"
                )
                results.extend([skipped] * (len(documents) - index - 1))
                break
        return DeliveryResult(tuple(results))

    def _post(self, document: Mapping[str, Any]) -> DocumentResult:
        result = self._send(document)
        if result.error:
            # A receiver that echoes request headers (or a part of the token) must
            # not get it into the outbox's error column or the logs.
            scrubbed = redact(result.error, self._secrets)
            if scrubbed != result.error:
                return DocumentResult(result.ok, result.status, scrubbed, result.retryable)
        return result

    def _send(self, document: Mapping[str, Any]) -> DocumentResult:
        body_doc = {k: v for k, v in document.items() if k != "_id"}
        alert_id = str(document.get("_id", ""))
        digest = content_digest(document)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, */*;q=0.5",
            "User-Agent": f"soc-command-center/{__version__}",
            "Idempotency-Key": f"{alert_id}-{digest}" if alert_id else digest,
        }
        if alert_id:
            headers["X-SOC-Alert-Id"] = alert_id
        if self._token is not None:
            headers[self.config.token_header] = self.config.token_prefix + self._token.reveal()
        data = json.dumps(body_doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        # The scheme was checked to be http or https when the config was built.
        request = urllib.request.Request(  # noqa: S310
            self.config.url, data=data, headers=headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                response.read(_MAX_RESPONSE_BYTES)
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = _response_excerpt(exc, self._secrets)
            if 300 <= status < 400:
                target = exc.headers.get("Location", "?") if exc.headers else "?"
                return DocumentResult(
                    ok=False,
                    status=status,
                    error=f"{status} redirect to {_short(redact_url(target), 200)} not followed",
                    retryable=False,
                )
            return DocumentResult(
                ok=False,
                status=status,
                error=f"{status} {exc.reason}{': ' + detail if detail else ''}",
                retryable=is_retryable_status(status),
            )
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return DocumentResult(
                ok=False, status=None, error=f"{type(reason).__name__}: {_short(str(reason))}"
            )
        if 200 <= status < 300:
            return DocumentResult(ok=True, status=status)
        return DocumentResult(
            ok=False, status=status, error=f"{status}", retryable=is_retryable_status(status)
        )

    def health(self) -> HealthStatus:
        """Whether the webhook's host accepts a TCP connection (nothing is POSTed)."""
        parts = urlsplit(self.config.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=min(self.config.timeout, 5.0)):
                pass
        except OSError as exc:
            return HealthStatus(False, f"{host}:{port} unreachable: {type(exc).__name__}: {exc}")
        return HealthStatus(True, f"{host}:{port} accepts connections")

    def close(self) -> None:
        """Nothing to release: each POST opens and closes its own connection."""


def _response_excerpt(exc: urllib.error.HTTPError, secrets: Sequence[SecretLike]) -> str:
    try:
        raw = exc.read(_MAX_RESPONSE_BYTES)
    except OSError:
        return ""
    finally:
        exc.close()
    text = raw.decode("utf-8", errors="replace")
    # Before shortening: a cut through the token would leave a prefix unmasked.
    return _short(redact(text, secrets), 200)


def _short(text: str, limit: int = 300) -> str:
    value = " ".join(text.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
