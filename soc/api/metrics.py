"""``/metrics``: the store's figures in Prometheus text format, read at scrape time.

One :class:`StoreCollector` per app, in a registry of its own (no process-wide
state): every scrape reads the store, so two API processes over one store say
the same thing, and nothing is counted in memory that a restart would lose.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from soc.store.api import ApiLog

#: The counters source the engine keeps its pipeline figures under.
PIPELINE = "(pipeline)"


class StoreCollector:
    """Reads the store at each scrape."""

    def __init__(self, log: ApiLog) -> None:
        self.log = log

    def collect(self) -> Iterator[Metric]:
        yield from self._sources()
        incidents = GaugeMetricFamily(
            "soc_incidents", "Incidents in the store", labels=["kind", "severity"]
        )
        for (kind, severity), n in sorted(self.log.incidents_by_kind_severity().items()):
            incidents.add_metric([kind, severity], n)
        yield incidents
        yield from self._models()
        depth = GaugeMetricFamily(
            "soc_export_queue_depth", "Documents waiting in the export outbox"
        )
        depth.add_metric([], self.log.store.outbox_depth())
        yield depth
        failing = GaugeMetricFamily(
            "soc_export_failing",
            "Undelivered export documents whose delivery failed at least once, by sink",
            labels=["sink"],
        )
        for sink, n in sorted(self.log.export_failures_by_sink().items()):
            failing.add_metric([sink], n)
        yield failing
        runs = GaugeMetricFamily("soc_playbook_runs", "Playbook runs by status", labels=["status"])
        for status, n in sorted(self.log.playbook_runs_by_status().items()):
            runs.add_metric([status], n)
        yield runs
        blocks = GaugeMetricFamily("soc_active_blocks", "Firewall blocks in force")
        blocks.add_metric([], self.log.active_blocks())
        yield blocks
        requests = CounterMetricFamily(
            "soc_api_requests", "API requests by status code", labels=["status"]
        )
        for code, n in sorted(self.log.requests_by_status().items()):
            requests.add_metric([str(code)], n)
        yield requests

    def _sources(self) -> Iterator[Metric]:
        lines = CounterMetricFamily("soc_lines", "Lines read, by source", labels=["source"])
        events = CounterMetricFamily("soc_events", "Events parsed, by source", labels=["source"])
        kinds = CounterMetricFamily(
            "soc_events_by_kind", "Events by source and kind", labels=["source", "kind"]
        )
        unparsed = CounterMetricFamily(
            "soc_unparsed_lines",
            "Lines not parsed, by source and reason",
            labels=["source", "reason"],
        )
        pipeline = CounterMetricFamily(
            "soc_pipeline",
            "The pipeline's own counters (late lines, incidents opened…)",
            labels=["name"],
        )
        for source, values in sorted(self.log.source_counters().items()):
            for name, value in sorted(values.items()):
                if source == PIPELINE:
                    pipeline.add_metric([name], value)
                elif name == "lines":
                    lines.add_metric([source], value)
                elif name == "events":
                    events.add_metric([source], value)
                elif name.startswith("kind."):
                    kinds.add_metric([source, name.removeprefix("kind.")], value)
                elif name.startswith("unparsed."):
                    unparsed.add_metric([source, name.removeprefix("unparsed.")], value)
        yield from (lines, events, kinds, unparsed, pipeline)

    def _models(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "soc_model_calls", "Model calls by provider", labels=["provider"]
        )
        tokens = CounterMetricFamily(
            "soc_model_tokens", "Model tokens by provider", labels=["provider", "direction"]
        )
        cost = CounterMetricFamily(
            "soc_model_cost_usd", "Model cost in US dollars by provider", labels=["provider"]
        )
        for provider, usage in sorted(self.log.model_usage().items()):
            calls.add_metric([provider], usage["calls"])
            tokens.add_metric([provider, "in"], usage["tokens_in"])
            tokens.add_metric([provider, "out"], usage["tokens_out"])
            cost.add_metric([provider], usage["cost_usd"])
        fallbacks = CounterMetricFamily(
            "soc_model_fallbacks",
            "Reports written by a fallback after the first provider failed, by their writer",
            labels=["provider"],
        )
        for provider, n in sorted(self.log.fallbacks_by_provider().items()):
            fallbacks.add_metric([provider], n)
        yield from (calls, tokens, cost, fallbacks)


def registry_for(log: ApiLog) -> CollectorRegistry:
    """A registry of its own holding one store collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(log))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text format (version 0.0.4)."""
    return generate_latest(registry)


__all__ = ["StoreCollector", "registry_for", "render"]
