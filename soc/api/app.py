"""The REST API over the library: incidents, playbooks, intake, health and /metrics.

:func:`create_app` builds one FastAPI app over a store, a responder and a clock
(no global state: two apps over two stores never meet). Every route but
``/healthz`` (and ``/metrics`` when ``[api] metrics_public``) needs a bearer
token with the route's scope; every request is written to the request log.
Handlers are plain functions run in FastAPI's thread pool, because the store
and the responder block. (No ``from __future__ import annotations`` here: FastAPI
reads the route signatures, whose dependencies are local to :func:`create_app`.)
"""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from soc import __version__
from soc.api.base import INTAKE, READ, RESPOND, ApiConfig
from soc.api.intake import ECS, ELASTIC, BodyError, Spool, documents, read_alerts
from soc.api.metrics import registry_for, render
from soc.api.models import (
    AnalysisOut,
    ErrorOut,
    HealthOut,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    IncidentPatch,
    IntakeOut,
    PlaybookOut,
    PlaybookRunOut,
    Queued,
    RunOut,
    RunRequest,
    SimilarOut,
    Status,
)
from soc.clock import Clock
from soc.errors import StoreError
from soc.store.api import ApiLog, TokenRecord

_log = logging.getLogger(__name__)

#: Seconds between two writes of a token's ``last_used_at``.
TOUCH_EVERY = 60.0
#: Largest incident id a path may name (the store's integer column).
MAX_ID = 2**31 - 1
#: Seconds between two prunings of the request log and the intake's alert ids.
PRUNE_EVERY = 3600.0
DAY = 86400.0
#: Similar incidents listed with one incident.
SIMILAR_K = 5

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNAUTHORIZED = {"model": ErrorOut, "description": "no valid token"}
_FORBIDDEN = {"model": ErrorOut, "description": "the token lacks the route's scope"}
_NOT_FOUND = {"model": ErrorOut, "description": "no such incident or playbook"}
_AUTH: dict[int | str, dict[str, Any]] = {401: _UNAUTHORIZED, 403: _FORBIDDEN}


class AuditMiddleware:
    """Writes every HTTP request to the request log: token, client, method, path, status, time."""

    def __init__(self, app: Asgi, *, log: ApiLog, clock: Clock, config: ApiConfig) -> None:
        self.app = app
        self.log = log
        self.clock = clock
        self.config = config
        self._next_prune = clock.monotonic()

    def _prune(self) -> None:
        """Drop requests and alert ids past their retention (at most once an hour)."""
        now = self.clock.now()
        dropped = self.log.prune(
            requests_before=now - self.config.request_log_days * DAY,
            alerts_before=now - self.config.intake_ids_days * DAY,
        )
        if any(dropped):
            _log.info("API request log: %d requests and %d alert ids pruned", *dropped)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        started = self.clock.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            values = {
                "at": self.clock.now(),
                "token_name": state.get("token_name"),
                "client": str(client[0]) if client else "",
                "method": str(scope.get("method", "")),
                "path": str(scope.get("path", "")),  # never the query string
                "status": status,
                "latency_ms": round((self.clock.monotonic() - started) * 1000.0, 3),
            }
            try:
                await run_in_threadpool(lambda: self.log.record_request(**values))
                if self.clock.monotonic() >= self._next_prune:
                    self._next_prune = self.clock.monotonic() + PRUNE_EVERY
                    await run_in_threadpool(self._prune)
            except Exception:  # the answer is sent; a store outage must not turn it into a 500
                _log.exception("could not log an API request")


def create_app(
    settings: Any,
    store: Any,
    responder: Any,
    *,
    clock: Clock,
    analyse: Callable[[int], None] | None = None,
    similar: Callable[[int, int], list[dict[str, Any]]] | None = None,
    api_log: ApiLog | None = None,
) -> FastAPI:
    """The API app over ``store`` and ``responder``.

    ``analyse(id)`` queues a new report; ``similar(id, k)`` lists the ``k``
    incidents most like one (``IncidentMemory.similar`` as dicts), None when the
    memory is off.
    """
    config: ApiConfig = settings.api
    log = api_log or ApiLog(store)
    spool = Spool(Path(config.intake_path))
    registry = registry_for(log)
    bearer = HTTPBearer(auto_error=False, description="a token from `soc api token create`")

    app = FastAPI(
        title="SOC Command Center API",
        version=__version__,
        description="Incidents, playbooks, alert intake and metrics of the SOC command center.",
    )
    app.add_middleware(AuditMiddleware, log=log, clock=clock, config=config)

    def authorised(request: Request, token: str | None, scope: str) -> TokenRecord:
        record = log.lookup(token) if token is not None else None
        if record is None:
            raise HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
        request.state.token_name = record.name
        if scope not in record.scopes:
            raise HTTPException(403, "forbidden")
        return record

    class Scoped:
        """The dependency checking a route's bearer token and scope."""

        def __init__(self, scope: str) -> None:
            self.scope = scope

        def __call__(
            self,
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> TokenRecord:
            token = authorised(
                request, credentials.credentials if credentials else None, self.scope
            )
            now = clock.now()
            if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
                log.touch(token.id, now=now)
            return token

    Reader = Annotated[TokenRecord, Depends(Scoped(READ))]
    Responder = Annotated[TokenRecord, Depends(Scoped(RESPOND))]
    Intaker = Annotated[TokenRecord, Depends(Scoped(INTAKE))]
    IncidentId = Annotated[int, PathParam(ge=1, le=MAX_ID)]

    @app.exception_handler(StoreError)
    def _store_down(request: Request, exc: StoreError) -> JSONResponse:
        _log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "the store is not available"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI checks paths and bodies before the token: answer 401/403 first, so
        # a caller without a valid token learns nothing about what a route accepts.
        scope = _scope_of(app, request.scope.get("endpoint"))
        if scope is not None:
            credentials = await bearer(request)
            token = credentials.credentials if credentials else None
            try:
                await run_in_threadpool(authorised, request, token, scope)
            except HTTPException as refused:
                return await http_exception_handler(request, refused)
        return await request_validation_exception_handler(request, exc)

    def similar_to(incident_id: int) -> tuple[list[SimilarOut], str | None]:
        if similar is None:
            return [], None
        try:
            return [SimilarOut(**m) for m in similar(incident_id, SIMILAR_K)], None
        except Exception:  # the memory is an aid: the incident is still answered
            _log.exception("similar incidents of %s", incident_id)
            return [], "similar incidents are not available (see the server's log)"

    def incident_or_404(incident_id: int) -> Any:
        incident = store.get_incident(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id}")
        return incident

    # --- incidents -------------------------------------------------------------------
    @app.get("/incidents", response_model=IncidentPage, responses=_AUTH, tags=["incidents"])
    def list_incidents(
        _: Reader,
        status: Annotated[list[Status] | None, Query()] = None,
        kind: Annotated[list[Annotated[str, Query(max_length=64)]] | None, Query()] = None,
        search: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> IncidentPage:
        """Incidents, last seen first, filtered by status, kind and free text (key, IP, user)."""
        statuses = list(status) if status else None
        kinds = list(kind) if kind else None
        items = store.list_incidents(
            status=statuses, kind=kinds, search=search, limit=limit, offset=offset
        )
        total = store.count_incidents(status=statuses, kind=kinds, search=search)
        return IncidentPage(
            items=[IncidentOut.of(i) for i in items], total=total, limit=limit, offset=offset
        )

    @app.get(
        "/incidents/{incident_id}",
        response_model=IncidentDetail,
        responses={**_AUTH, 404: _NOT_FOUND},
        tags=["incidents"],
    )
    def get_incident(incident_id: IncidentId, _: Reader) -> IncidentDetail:
        """One incident with its evidence lines, reports, similar incidents and playbook runs."""
        incident = incident_or_404(incident_id)
        like, like_error = similar_to(incident_id)
        return IncidentDetail(
            incident=IncidentOut.of(incident),
            evidence=list(incident.evidence),
            similar=like,
            similar_error=like_error,
            analyses=[
                AnalysisOut(
                    id=a.id,
                    provider=a.provider,
                    model=a.model,
                    created_at=a.created_at,
                    markdown=a.markdown,
                    structured=a.structured,
                    tokens_in=a.tokens_in,
                    tokens_out=a.tokens_out,
                    cost_usd=a.cost_usd,
                    latency_s=a.latency_s,
                    grounded=a.grounded,
                    fallback_reason=a.fallback_reason,
                    reused=a.reused,
                )
                for a in store.analyses(incident_id)
            ],
            playbook_runs=[
                PlaybookRunOut(
                    id=r.id,
                    playbook=r.playbook,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    status=r.status,
                    actor=r.actor,
                    output=r.output,
                )
                for r in store.playbook_runs(incident_id)
            ],
        )

    @app.patch(
        "/incidents/{incident_id}",
        response_model=IncidentOut,
        responses={**_AUTH, 400: {"model": ErrorOut}, 404: _NOT_FOUND},
        tags=["incidents"],
    )
    def patch_incident(incident_id: IncidentId, change: IncidentPatch, _: Responder) -> IncidentOut:
        """Set the analyst's status and/or notes (detector updates never overwrite them)."""
        if change.status is None and change.notes is None:
            raise HTTPException(400, "nothing to change: give status or notes")
        incident = incident_or_404(incident_id)
        store.set_status(incident_id, change.status or incident.status, change.notes)
        return IncidentOut.of(incident_or_404(incident_id))

    @app.post(
        "/incidents/{incident_id}/analyse",
        status_code=202,
        response_model=Queued,
        responses={**_AUTH, 404: _NOT_FOUND, 503: {"model": ErrorOut}},
        tags=["incidents"],
    )
    def analyse_incident(incident_id: IncidentId, _: Responder) -> Queued:
        """Queue a new report; poll the incident for it."""
        incident_or_404(incident_id)
        if analyse is None:
            raise HTTPException(503, "analysis not available")
        analyse(incident_id)
        return Queued(queued=True, poll=f"/incidents/{incident_id}")

    # --- playbooks -------------------------------------------------------------------
    @app.get("/playbooks", response_model=list[PlaybookOut], responses=_AUTH, tags=["playbooks"])
    def list_playbooks(_: Reader) -> list[PlaybookOut]:
        """The loaded playbooks and the incident kinds whose rule recommends each."""
        from soc.respond.base import format_duration

        kinds: dict[str, list[str]] = {}
        for kind, name in sorted(responder.recommended.items()):
            kinds.setdefault(name, []).append(kind)
        return [
            PlaybookOut(
                name=book.name,
                description=book.description,
                ttl_seconds=int(book.ttl),
                ttl=format_duration(book.ttl),
                steps=[{"action": s.action, **s.params} for s in book.steps],
                recommended_for=kinds.get(book.name, []),
            )
            for book in responder.playbooks.values()
        ]

    @app.post(
        "/incidents/{incident_id}/playbooks/{name}",
        response_model=RunOut,
        responses={**_AUTH, 404: _NOT_FOUND, 409: {"model": ErrorOut}},
        tags=["playbooks"],
    )
    def run_playbook(
        incident_id: IncidentId,
        name: Annotated[str, PathParam(max_length=100)],
        run: RunRequest,
        token: Responder,
        request: Request,
    ) -> dict[str, Any]:
        """Plan and run a playbook (a dry run unless ``enforce``); every step is audited."""
        from soc.respond import RespondError

        if name not in responder.playbooks:
            raise HTTPException(404, f"unknown playbook {name!r}")
        incident_or_404(incident_id)
        if run.enforce and not responder.config.enforces_anything:
            raise HTTPException(409, "nothing may enforce: [respond] mode is dry_run")
        client = request.client.host if request.client else ""
        try:
            plan = responder.plan(
                incident_id, name, actor=f"api:{token.name}", client=client, enforce=run.enforce
            )
            result = responder.execute(plan)
        except RespondError as exc:
            text = str(exc).splitlines()[0] if str(exc) else "refused"
            raise HTTPException(409, text) from None
        out: dict[str, Any] = result.as_dict()
        return out

    # --- intake ----------------------------------------------------------------------
    async def take_in(request: Request, intake: str) -> IntakeOut:
        body = await _read_body(request, config.max_body_bytes)
        return await run_in_threadpool(lambda: _take(body, intake))

    def _take(body: bytes, intake: str) -> IntakeOut:
        try:
            docs = documents(body, intake)
        except BodyError as exc:
            raise HTTPException(400, str(exc)) from None
        if len(docs) > config.max_events:
            raise HTTPException(413, f"more than {config.max_events} alerts in one request")
        taken = read_alerts(docs, intake)
        with spool.lock:
            new = log.unseen(intake, taken.lines)
            lines = [line for ident, line in taken.lines.items() if ident in new]
            spool.append(lines)
            log.record_alerts(intake, [i for i in taken.lines if i in new], now=clock.now())
        return IntakeOut(
            accepted=len(lines),
            duplicates=len(taken.lines) - len(lines) + taken.repeated,
            rejected=sum(taken.rejected.values()),
            reasons=dict(sorted(taken.rejected.items())),
        )

    intake_responses: dict[int | str, dict[str, Any]] = {
        **_AUTH,
        400: {"model": ErrorOut, "description": "malformed JSON or the wrong shape"},
        413: {"model": ErrorOut, "description": "past max_body_bytes or max_events"},
    }

    @app.post(
        "/intake/ecs",
        response_model=IntakeOut,
        responses=intake_responses,
        tags=["intake"],
        openapi_extra={"requestBody": _body_schema(_ECS_BODY)},
    )
    async def intake_ecs(request: Request, _: Intaker) -> IntakeOut:
        """ECS events (a JSON array, one object, or NDJSON), each with ``event.id`` or ``_id``."""
        return await take_in(request, ECS)

    @app.post(
        "/intake/elastic",
        response_model=IntakeOut,
        responses=intake_responses,
        tags=["intake"],
        openapi_extra={"requestBody": _body_schema(_ELASTIC_BODY)},
    )
    async def intake_elastic(request: Request, _: Intaker) -> IntakeOut:
        """What an Elastic Security rule's webhook connector sends (see the README)."""
        return await take_in(request, ELASTIC)

    # --- health and metrics ----------------------------------------------------------
    @app.get("/healthz", response_model=HealthOut, tags=["operations"])
    def healthz() -> HealthOut:
        """Whether the store answers, and the export queue's depth (no token needed)."""
        checks: dict[str, Any] = {}
        try:
            store.schema_version()
            checks["store"] = "ok"
            checks["export_queue"] = store.outbox_depth()
        except Exception:
            checks["store"] = "unavailable"
        checks["playbooks"] = len(responder.playbooks)
        ok = checks["store"] == "ok" and responder.playbook_error is None
        if responder.playbook_error is not None:
            checks["playbooks"] = "invalid"
        return HealthOut(status="ok" if ok else "degraded", checks=checks)

    metrics_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **({} if config.metrics_public else _AUTH),
    }

    @app.get(
        "/metrics",
        response_class=Response,
        responses=metrics_responses,
        tags=["operations"],
        dependencies=[] if config.metrics_public else [Depends(Scoped(READ))],
    )
    def metrics() -> Response:
        """The store's figures in Prometheus text format (a ``read`` token unless public)."""
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _scope_of(app: FastAPI, endpoint: Any) -> str | None:
    """The scope the route serving ``endpoint`` asks its token for (None: no token)."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            for dependency in route.dependant.dependencies:
                scope = getattr(dependency.call, "scope", None)
                if isinstance(scope, str):
                    return scope
    return None


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_EVENT = {"type": "object", "additionalProperties": True}
_ECS_BODY = {
    "oneOf": [{"type": "array", "items": _EVENT}, _EVENT],
    "description": "ECS events, each with event.id or _id (NDJSON is accepted too)",
}
_ELASTIC_BODY = {
    "type": "object",
    "required": ["alerts"],
    "properties": {
        "rule": {"type": "object", "additionalProperties": True},
        "alerts": {"type": "array", "items": _EVENT},
    },
    "description": 'the webhook connector body {"rule": {...}, "alerts": {{{context.alerts}}}}',
}


def _body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


__all__ = ["AuditMiddleware", "create_app"]
