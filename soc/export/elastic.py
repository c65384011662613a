"""Elasticsearch sink: ECS alerts through the official client's bulk helper.

Where the alerts go, and why there. Elastic Security's prebuilt "External Alerts"
rule (rule_id eb079c62-4481-4d6e-9643-3ca499df7aaa) turns every document with
``event.kind: alert`` in ``apm-*-transaction*``, ``traces-apm*``, ``auditbeat-*``,
``filebeat-*``, ``logs-*``, ``packetbeat-*`` or ``winlogbeat-*`` into a detection
alert. It uses ``message`` as the alert's name, maps ``event.severity``
21/47/73/99 to low/medium/high/critical and ``event.risk_score`` to the risk
score, and selects documents by ``event.ingested`` (timestamp override) over the
last two minutes, so the sink stamps ``event.ingested`` with the wall-clock time of
sending: a replayed incident from last year is still picked up.

The default index is ``logs-soc.alerts``, a plain index (not a data stream):

- it is inside ``logs-*``, so External Alerts sees it with no setup;
- it has one dash, so it does not match the built-in ``logs-*-*`` template that
  would make it a data stream, and a plain index lets the sink write with the
  ``index`` operation and ``_id = soc-<incident id>``: each update of a campaign
  overwrites its one document instead of piling up copies, and a retry after a
  lost acknowledgement overwrites instead of duplicating. Data streams accept only
  ``create`` and cannot overwrite by ``_id``.

The sink installs a small index template for that exact index (ECS types for the
fields it writes: ``ip`` for addresses, ``date`` for times) unless told not to; a
key without the right to do so only loses the typed mapping. The template has no
``data_stream`` and outranks the built-in ones, so in ``index`` mode even a
``logs-*-*`` name is created as a plain index (unless that data stream exists).

For a data stream (``logs-soc.alerts-default``, ``op_type = "create"``), every
update becomes its own document, ``_id = soc-<incident id>-<content digest>``; a
retry of a document already stored gets a 409 conflict, which counts as delivered,
so retries still never duplicate. The built-in ``logs`` template maps it.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import streaming_bulk

from soc.clock import Clock, SystemClock
from soc.config import Secret
from soc.errors import ConfigError
from soc.events import format_timestamp
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

#: Default index: inside External Alerts' ``logs-*``, outside the ``logs-*-*`` data-stream template.
DEFAULT_INDEX = "logs-soc.alerts"

# Index name rules from Elasticsearch: lowercase, none of these characters, not
# starting with - _ +, not . or .., at most 255 bytes.
_BAD_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:A-Z]')

#: Priority of the installed template: above the built-in ones (100), and it names
#: one exact index, so it overlaps nothing else.
TEMPLATE_PRIORITY = 200


@dataclass(slots=True)
class ElasticConfig:
    """Where and how alerts are written to Elasticsearch.

    ``hosts``: node URLs (``https://…`` in production). ``index``: target index or
    data stream. ``op_type``: ``"index"`` (overwrite by ``_id``, for a plain index)
    or ``"create"`` (append, for a data stream). ``api_key_secret``: the name of
    the secret holding the API key (``elasticsearch_api_key``, read from
    ``SOC_ELASTICSEARCH_API_KEY``/``ELASTIC_API_KEY`` or secrets.toml; empty = no
    auth). ``ca_certs``: a CA bundle path (empty = system CAs). ``max_retries``:
    immediate retries by the client on a connection error or a 502/503/504;
    longer outages are the outbox's job (``backoff_base``..``backoff_max``
    seconds, doubling). ``batch_size``: outbox rows per pass, sent as bulk
    requests of ``chunk_size`` documents.
    """

    hosts: list[str] = field(default_factory=lambda: ["http://127.0.0.1:9200"])
    index: str = DEFAULT_INDEX
    op_type: Literal["index", "create"] = "index"
    install_template: bool = True
    api_key_secret: str = "elasticsearch_api_key"  # noqa: S105 (the secret's name)
    verify_certs: bool = True
    ca_certs: str = ""
    request_timeout: float = 10.0
    max_retries: int = 1
    chunk_size: int = 500
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    batch_size: int = 500

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ConfigError("needs at least one URL", where="hosts")
        for host in self.hosts:
            if not re.match(r"^https?://[^\s/]+", host):
                raise ConfigError(
                    f"must be an http:// or https:// URL, not {host!r}", where="hosts"
                )
        problem = index_name_problem(self.index)
        if problem:
            raise ConfigError(problem, where="index")
        if self.op_type not in ("index", "create"):
            raise ConfigError(f"must be 'index' or 'create', not {self.op_type!r}", "op_type")
        if not self.request_timeout > 0:
            raise ConfigError("must be a positive number of seconds", where="request_timeout")
        if not 0 <= self.max_retries <= 10:
            raise ConfigError("must be between 0 and 10", where="max_retries")
        if not 1 <= self.chunk_size <= 10_000:
            raise ConfigError("must be between 1 and 10000", where="chunk_size")
        check_retry_settings(self.backoff_base, self.backoff_max, self.batch_size)


def index_name_problem(name: str) -> str | None:
    """Why Elasticsearch would refuse ``name`` as an index name, or None."""
    if not name or name in (".", ".."):
        return "must be a non-empty index name"
    if _BAD_INDEX_CHARS.search(name):
        return f'must be lowercase without spaces or \\/*?"<>|,#: characters, not {name!r}'
    if name[0] in "-_+":
        return f"must not start with -, _ or +: {name!r}"
    if len(name.encode("utf-8")) > 255:
        return "must be at most 255 bytes"
    return None


class ElasticSink:
    """Writes ECS alert documents to Elasticsearch with ``helpers.streaming_bulk``.

    The client is created once and reused (it keeps a connection pool). The API
    key is handed to the client and nowhere else: it is not kept on the sink, not
    logged and not in ``repr``.
    """

    def __init__(
        self,
        config: ElasticConfig,
        *,
        name: str = "elasticsearch",
        secrets: Mapping[str, Secret] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.latest_only = config.op_type == "index"
        self.retry = RetryPolicy(config.backoff_base, config.backoff_max)
        self.batch_size = config.batch_size
        self._clock: Clock = clock or SystemClock()
        api_key = (secrets or {}).get(config.api_key_secret) if config.api_key_secret else None
        options: dict[str, Any] = {
            "request_timeout": config.request_timeout,
            "max_retries": config.max_retries,
            "retry_on_timeout": True,
            "retry_on_status": (502, 503, 504),
            "verify_certs": config.verify_certs,
        }
        if config.ca_certs:
            options["ca_certs"] = config.ca_certs
        if api_key is not None:
            options["api_key"] = api_key.reveal()
        #: What no message may show: the API key, and a password in a host URL.
        self._secrets: list[SecretLike] = [
            api_key,
            *(secret for host in config.hosts for secret in url_secrets(host)),
        ]
        self.client = Elasticsearch(list(config.hosts), **options)
        self._template_done = not (config.install_template and config.op_type == "index")

    def __repr__(self) -> str:
        return (
            f"ElasticSink(name={self.name!r}, "
            f"hosts={[redact_url(host) for host in self.config.hosts]!r}, "
            f"index={self.config.index!r}, op_type={self.config.op_type!r})"
        )

    # --- delivery -----------------------------------------------------------------

    def deliver(self, documents: Sequence[Mapping[str, Any]]) -> DeliveryResult:
        """Bulk-write ``documents``; one result per document, in order."""
        if not documents:
            return DeliveryResult(())
        self._ensure_template()
        ingested = format_timestamp(self._clock.now())
        actions = [self._action(doc, ingested) for doc in documents]
        results: list[DocumentResult] = []
        try:
            # raise_on_error=False: per-document failures come back as items. A
            # failed request (no response, 5xx, auth) raises and fails the rest.
            # No in-call retries (max_retries=0): the helper would block in
            # time.sleep; the outbox retries with backoff instead.
            for ok, item in streaming_bulk(
                self.client,
                actions,
                chunk_size=self.config.chunk_size,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=0,
            ):
                results.append(self._item_result(ok, item))
        except ApiError as exc:
            status = exc.meta.status if exc.meta is not None else None
            failure = DocumentResult(
                ok=False,
                status=status,
                error=f"{type(exc).__name__}: {self._said(exc.message)}",
                retryable=is_retryable_status(status) or (status is not None and status < 300),
            )
            results.extend([failure] * (len(actions) - len(results)))
        except TransportError as exc:
            failure = DocumentResult(
                ok=False, status=None, error=f"{type(exc).__name__}: {self._said(exc.message)}"
            )
            results.extend([failure] * (len(actions) - len(results)))
        return DeliveryResult(tuple(results))

    def _action(self, document: Mapping[str, Any], ingested: str) -> dict[str, Any]:
        source = copy.deepcopy(dict(document))
        base_id = str(source.pop("_id", "") or "")
        doc_id = base_id or content_digest(document)
        if self.config.op_type == "create" and base_id:
            doc_id = f"{base_id}-{content_digest(document)}"
        event = source.get("event")
        if isinstance(event, dict):
            event["ingested"] = ingested
        else:
            source["event"] = {"ingested": ingested}
        return {
            "_op_type": self.config.op_type,
            "_index": self.config.index,
            "_id": doc_id,
            "_source": source,
        }

    def _item_result(self, ok: bool, item: Mapping[str, Any]) -> DocumentResult:
        info: Any = next(iter(item.values()), {}) if item else {}
        status = info.get("status") if isinstance(info, Mapping) else None
        if ok:
            return DocumentResult(ok=True, status=status)
        error = info.get("error") if isinstance(info, Mapping) else None
        if isinstance(error, Mapping):
            kind = str(error.get("type", "error"))
            text = f"{kind}: {_short(str(error.get('reason', '')))}"
        else:
            kind = ""
            text = _short(str(error or "failed"))
        if status == 409 and self.config.op_type == "create":
            # create with an _id that exists: this very document (same content
            # digest) is already stored, from an attempt whose answer was lost.
            return DocumentResult(ok=True, status=status)
        return DocumentResult(
            ok=False,
            status=status,
            error=f"{status} {text}",
            retryable=is_retryable_status(status),
        )

    # --- index template -----------------------------------------------------------

    def _ensure_template(self) -> None:
        if self._template_done:
            return
        try:
            self.client.indices.put_index_template(
                name=f"soc-alerts-{self.config.index}",
                index_patterns=[self.config.index],
                priority=TEMPLATE_PRIORITY,
                template={"mappings": alert_mappings()},
                meta={"description": "ECS alerts from SOC Command Center", "managed": True},
            )
        except ApiError as exc:
            # Permanent (no privilege, a conflicting template): deliveries still
            # work with dynamic mappings, so say it once and go on.
            self._template_done = True
            _log.warning(
                "could not install the index template for %s (%s %s): "
                "alerts are written with dynamic mappings",
                self.config.index,
                exc.meta.status if exc.meta is not None else "?",
                self._said(exc.message),
            )
        except TransportError:
            return  # unreachable: the bulk request will fail too; try again next time
        else:
            self._template_done = True

    # --- health -------------------------------------------------------------------

    def health(self) -> HealthStatus:
        """Ask the cluster who it is (``GET /``), with no retries and a short timeout."""
        try:
            info = self.client.options(
                request_timeout=min(self.config.request_timeout, 5.0), max_retries=0
            ).info()
        except ApiError as exc:
            status = exc.meta.status if exc.meta is not None else None
            return HealthStatus(
                False, f"{type(exc).__name__} ({status}): {self._said(exc.message)}"
            )
        except TransportError as exc:
            return HealthStatus(False, f"{type(exc).__name__}: {self._said(exc.message)}")
        body = info.body if isinstance(info.body, Mapping) else {}
        version = body.get("version", {}).get("number", "?")
        cluster = body.get("cluster_name", "?")
        return HealthStatus(True, f"Elasticsearch {version}, cluster {cluster!r}")

    def close(self) -> None:
        self.client.close()

    def _said(self, text: object) -> str:
        """What the client or the cluster said, short, with no credential in it."""
        return _short(redact(str(text), self._secrets))


def _short(text: object, limit: int = 300) -> str:
    value = str(text).replace("\n", " ")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def alert_mappings() -> dict[str, Any]:
    """ECS field types for the alert documents (everything else maps dynamically)."""
    keyword: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
    date: dict[str, Any] = {"type": "date"}

    def obj(**props: Any) -> dict[str, Any]:
        return {"properties": props}

    return {
        "dynamic": True,
        "properties": {
            "@timestamp": date,
            "message": {"type": "match_only_text"},
            "tags": keyword,
            "ecs": obj(version=keyword),
            "event": obj(
                kind=keyword,
                category=keyword,
                type=keyword,
                action=keyword,
                module=keyword,
                dataset=keyword,
                provider=keyword,
                id=keyword,
                severity={"type": "long"},
                risk_score={"type": "float"},
                start=date,
                end=date,
                created=date,
                ingested=date,
                duration={"type": "long"},
                reference=keyword,
            ),
            "rule": obj(
                id=keyword,
                name=keyword,
                description=keyword,
                category=keyword,
                reference=keyword,
                ruleset=keyword,
                author=keyword,
            ),
            "threat": obj(
                framework=keyword,
                tactic=obj(id=keyword, name=keyword, reference=keyword),
                technique=obj(
                    id=keyword,
                    name=keyword,
                    reference=keyword,
                    subtechnique=obj(id=keyword, name=keyword, reference=keyword),
                ),
            ),
            "source": obj(ip={"type": "ip"}, address=keyword, domain=keyword),
            "related": obj(ip={"type": "ip"}, user=keyword),
            "user": obj(name=keyword),
            "host": obj(name=keyword, hostname=keyword),
            "soc": obj(
                incident=obj(id={"type": "long"}, key=keyword, status=keyword),
                kind=keyword,
                severity=keyword,
                status=keyword,
                failures={"type": "long"},
                successes={"type": "long"},
                events={"type": "long"},
                distinct_users={"type": "long"},
                source_ip_count={"type": "long"},
                closed={"type": "boolean"},
                updated_at=date,
                evidence={"type": "match_only_text"},
            ),
        },
    }
