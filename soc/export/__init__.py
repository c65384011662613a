"""Export: incidents leave as ECS alerts through sinks (Elasticsearch, webhook) and an outbox.

``SINK_TYPES`` maps the short name used in configuration (``type = "elasticsearch"``)
to ``"module:ConfigClass:SinkClass"`` so that importing this package does not import
the Elasticsearch client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.config import Secret, build_dataclass
from soc.export.base import (
    DeliveryResult,
    DocumentResult,
    HealthStatus,
    RetryPolicy,
    Sink,
    alert_id,
    to_ecs_alert,
)
from soc.export.outbox import ExportReport, Outbox, deliver_pending, enqueue_alert
from soc.registry import resolve

SINK_TYPES: dict[str, str] = {
    "elasticsearch": "soc.export.elastic:ElasticConfig:ElasticSink",
    "webhook": "soc.export.webhook:WebhookConfig:WebhookSink",
}


def sink_classes(type_name: str) -> tuple[type[Any], type[Any]]:
    """The (config class, sink class) registered under ``type_name``."""
    config_class, sink_class = resolve(SINK_TYPES, type_name, "sink type")
    return config_class, sink_class


def build_sink(
    type_name: str,
    options: Mapping[str, Any],
    *,
    name: str | None = None,
    secrets: Mapping[str, Secret] | None = None,
    where: str = "soc.toml: [[exports]]",
) -> Sink:
    """Validate ``options`` into the sink type's config and build the sink."""
    config_cls, sink_cls = sink_classes(type_name)
    config = build_dataclass(config_cls, options, f"{where} ({type_name})")
    sink: Sink = sink_cls(config, name=name or type_name, secrets=secrets)
    return sink


__all__ = [
    "SINK_TYPES",
    "DeliveryResult",
    "DocumentResult",
    "ExportReport",
    "HealthStatus",
    "Outbox",
    "RetryPolicy",
    "Sink",
    "alert_id",
    "build_sink",
    "deliver_pending",
    "enqueue_alert",
    "sink_classes",
    "to_ecs_alert",
]
