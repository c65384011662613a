"""The model server's HTTP interface: the part of OpenAI's API an analyst needs.

``POST /v1/chat/completions`` (non-streaming; ``response_format`` ``json_schema``
or ``json_object``), ``GET /v1/models`` and ``GET /health``. Every request but
the health check needs ``Authorization: Bearer TOKEN`` when the server has a
token (the supervisor always gives it one; the model server is a local
service, but other users of the machine are not the analyst).

Inference runs on a worker thread (llama.cpp releases the GIL while it
computes), so ``/health`` answers while a report is being written: a server
that stops answering it is hung, not busy. Requests wait their turn: the model
runs one completion at a time.

Errors have OpenAI's shape (``{"error": {"message", "type", "code"}}``). A
request cut at its deadline is a 504 whose body also carries ``usage``: the
tokens evaluated before the deadline, which the client counts against its budget.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from soc.modelserver.llama import SEED, EngineError, LlamaEngine

_log = logging.getLogger(__name__)

#: HTTP status and OpenAI error type per engine failure.
_ERRORS = {
    "bad_request": (400, "invalid_request_error"),
    "timeout": (504, "timeout"),
    "load": (503, "model_unavailable"),
    "internal": (500, "server_error"),
}


class Message(BaseModel):
    """One chat message (text content only)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = "response"
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatRequest(BaseModel):
    """The fields of OpenAI's chat completion request this server honours (others ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str = ""
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1)
    stream: Literal[False] = False
    response_format: ResponseFormat | None = None


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": kind, "param": None}, **extra},
        status_code=status,
    )


def create_app(
    engine: LlamaEngine,
    *,
    model_id: str,
    token: str = "",
    request_timeout: float = 60.0,
    max_tokens: int = 4096,
) -> FastAPI:
    """The ASGI app serving ``engine`` as ``model_id``.

    ``request_timeout``: seconds a completion may take, queueing included.
    ``max_tokens``: the most a request may ask for (its own ``max_tokens`` is cut to it).
    """
    app = FastAPI(title="SOC Command Center model server", docs_url=None, redoc_url=None)
    started = time.time()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        if token and request.url.path != "/health":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _error(401, "invalid_api_key", "missing or wrong bearer token")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(
            400, "invalid_request_error", f"{where or 'body'}: {first.get('msg', 'invalid')}"
        )

    @app.get("/health")
    def health() -> JSONResponse:
        busy = engine.busy_since
        body: dict[str, Any] = {
            "status": "ok" if engine.loaded else "loading",
            "model": model_id,
            "pid": os.getpid(),
            "busy_seconds": None if busy is None else round(time.monotonic() - busy, 3),
            "load_seconds": engine.load_seconds,
            "chat_format": engine.chat_format,
            "system_turn": engine.system_turn,
        }
        return JSONResponse(body, status_code=200 if engine.loaded else 503)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": model_id, "object": "model", "created": int(started), "owned_by": "soc"}
            ],
        }

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatRequest) -> JSONResponse:
        # A sync endpoint: FastAPI runs it on a worker thread, off the event loop.
        deadline = time.monotonic() + request_timeout
        if not engine.loaded:
            return _error(503, "model_unavailable", "the model is still loading")
        if body.model and body.model != model_id:
            return _error(404, "model_not_found", f"this server serves {model_id!r} only")
        schema: dict[str, Any] | None = None
        fmt = body.response_format
        if fmt is not None and fmt.type == "json_schema":
            if fmt.json_schema is None:
                return _error(400, "invalid_request_error", "response_format.json_schema missing")
            schema = fmt.json_schema.schema_
        limit = min(body.max_completion_tokens or body.max_tokens or max_tokens, max_tokens)
        try:
            result = engine.chat(
                [
                    {"role": "system" if m.role == "developer" else m.role, "content": m.content}
                    for m in body.messages
                ],
                schema=schema,
                json_object=fmt is not None and fmt.type == "json_object",
                temperature=body.temperature,
                max_tokens=limit,
                seed=SEED if body.seed is None else body.seed,
                deadline=deadline,
            )
        except EngineError as exc:
            status, kind = _ERRORS.get(exc.reason, (500, "server_error"))
            usage = {
                "prompt_tokens": exc.tokens_in,
                "completion_tokens": exc.tokens_out,
                "total_tokens": exc.tokens_in + exc.tokens_out,
            }
            if exc.reason == "timeout":
                message = f"{exc.message} ({request_timeout:g} s)"
            else:
                message = exc.message
            return _error(status, kind, message, usage=usage)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result.text},
                        "finish_reason": result.finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.prompt_tokens + result.completion_tokens,
                },
            }
        )

    return app


def load_in_background(
    engine: LlamaEngine, on_failure: Callable[[EngineError], None]
) -> threading.Thread:
    """Load the model on a thread (``/health`` says ``loading`` meanwhile); ``on_failure(exc)``."""

    def load() -> None:
        try:
            engine.load()
        except EngineError as exc:
            on_failure(exc)

    thread = threading.Thread(target=load, name="soc-model-load", daemon=True)
    thread.start()
    return thread


__all__ = ["ChatRequest", "create_app", "load_in_background"]
