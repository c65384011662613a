"""What the REST API answers and accepts, as pydantic models (they make /openapi.json precise)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soc.events import Incident

Status = Literal["new", "triaged", "resolved", "false_positive"]


class ErrorOut(BaseModel):
    """Every error: one line, nothing else."""

    detail: str


class IncidentOut(BaseModel):
    """An incident, without its evidence lines."""

    id: int
    key: str
    kind: str
    first_seen: float
    last_seen: float
    source_ips: list[str]
    users: list[str]
    distinct_users: int
    failures: int
    successes: int
    events: int
    severity: str
    technique: str
    technique_name: str
    status: str
    notes: str
    opened_at: float | None
    updated_at: float | None
    closed: bool
    facts: dict[str, Any]

    @classmethod
    def of(cls, incident: Incident) -> IncidentOut:
        return cls(
            id=incident.id or 0,
            key=incident.key,
            kind=incident.kind,
            first_seen=incident.first_seen,
            last_seen=incident.last_seen,
            source_ips=list(incident.source_ips),
            users=list(incident.users),
            distinct_users=incident.distinct_users,
            failures=incident.failures,
            successes=incident.successes,
            events=incident.events,
            severity=incident.severity,
            technique=incident.technique,
            technique_name=incident.technique_name,
            status=incident.status,
            notes=incident.notes,
            opened_at=incident.opened_at,
            updated_at=incident.updated_at,
            closed=incident.closed,
            facts=dict(incident.facts),
        )


class IncidentPage(BaseModel):
    """One page of incidents and how many match the filters in all."""

    items: list[IncidentOut]
    total: int
    limit: int
    offset: int


class AnalysisOut(BaseModel):
    """One stored report."""

    id: int
    provider: str
    model: str
    created_at: float
    markdown: str
    structured: Any
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    grounded: bool
    fallback_reason: str | None
    reused: bool


class PlaybookRunOut(BaseModel):
    """One playbook run against the incident."""

    id: int
    playbook: str
    started_at: float
    finished_at: float | None
    status: str
    actor: str
    output: Any


class SimilarOut(BaseModel):
    """A past incident like this one: cosine score, and how it stands now."""

    incident_id: int
    score: float
    kind: str
    status: str
    severity: str
    last_seen: float
    verdict: str | None


class IncidentDetail(BaseModel):
    """An incident with its evidence lines, reports, similar incidents and playbook runs.

    ``similar_error``: why similar incidents could not be looked up (the list is
    then empty), None otherwise; ``similar`` is empty too when ``[similar]`` is off.
    """

    incident: IncidentOut
    evidence: list[str]
    analyses: list[AnalysisOut]
    similar: list[SimilarOut]
    similar_error: str | None = None
    playbook_runs: list[PlaybookRunOut]


class IncidentPatch(BaseModel):
    """What an analyst may change: the status, the notes, or both."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    notes: str | None = Field(default=None, max_length=20_000)


class Queued(BaseModel):
    """An analysis was queued; the incident shows the report when it is written."""

    queued: bool
    poll: str


class PlaybookOut(BaseModel):
    """A loaded playbook."""

    name: str
    description: str
    ttl_seconds: int
    ttl: str
    steps: list[dict[str, Any]]
    recommended_for: list[str]


class RunRequest(BaseModel):
    """A playbook run: a dry run unless ``enforce`` (and ``[respond]`` enables it)."""

    model_config = ConfigDict(extra="forbid")

    enforce: bool = False


class RunOut(BaseModel):
    """A playbook run as ``soc respond --json`` prints it."""

    run_id: int
    incident_id: int
    playbook: str
    actor: str
    mode: str
    status: str
    steps: list[dict[str, Any]]


class IntakeOut(BaseModel):
    """What an intake request did: alerts written, repeats, refusals by reason."""

    accepted: int
    duplicates: int
    rejected: int
    reasons: dict[str, int]


class HealthOut(BaseModel):
    """``ok`` when the store answers; the export queue's depth."""

    status: Literal["ok", "degraded"]
    checks: dict[str, Any]


__all__ = [
    "AnalysisOut",
    "ErrorOut",
    "HealthOut",
    "IncidentDetail",
    "IncidentOut",
    "IncidentPage",
    "IncidentPatch",
    "IntakeOut",
    "PlaybookOut",
    "PlaybookRunOut",
    "Queued",
    "RunOut",
    "RunRequest",
    "SimilarOut",
    "Status",
]
