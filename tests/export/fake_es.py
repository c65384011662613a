"""A local HTTP server speaking enough of the Elasticsearch REST protocol for the official client.

No Elasticsearch can be installed here, so the export tests talk to this instead,
through the real ``elasticsearch`` client over a real socket. It implements what
the client checks and what the sink uses, the way Elasticsearch 9 does it:

- every response carries ``X-Elastic-Product: Elasticsearch`` (the client refuses a
  server without it) and a ``application/vnd.elasticsearch+json;compatible-with=9``
  content type; requests must use the compatible-with=8/9 media types;
- ``GET /`` (info, with a version body) and ``HEAD /`` (ping);
- ``PUT``/``POST /_bulk`` and ``/<index>/_bulk``: NDJSON with ``index``, ``create``
  and ``delete``; per-item results with status, ``_version``, ``result``, errors;
- index auto-creation: a name matching ``logs-*-*`` becomes a data stream (as the
  built-in ``logs`` template does) unless a higher-priority template without
  ``data_stream`` matches; data streams take only ``create`` and need ``@timestamp``;
- ``PUT /_index_template/<name>``, ``GET /<index>/_doc/<id>``, ``GET /<index>/_count``;
- an optional API key (``Authorization: ApiKey …``), 401 otherwise.

Switches simulate trouble: ``stop()``/``start()`` (connection refused, on the
same port), ``unavailable`` (503 for everything), ``reject_items`` (the next N
bulk items get 429 ``es_rejected_execution_exception``), ``drop_bulk_responses``
(the next N bulk requests are applied but the connection is closed before the
answer: a lost acknowledgement) and ``template_status`` (refuse template installs).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fake_http import FakeService, TrackingHandler

ES_VERSION = "9.1.0"
COMPAT_JSON = "application/vnd.elasticsearch+json;compatible-with=9"


@dataclass
class StoredDoc:
    """One document as the fake index holds it."""

    source: dict[str, Any]
    version: int
    seq_no: int


@dataclass
class Index:
    """A fake index or data stream."""

    name: str
    data_stream: bool
    mappings: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, StoredDoc] = field(default_factory=dict)


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FakeElasticsearch(FakeService):
    """A threaded fake Elasticsearch on 127.0.0.1; use as a context manager."""

    def __init__(self, *, api_key: str | None = None, product_header: bool = True) -> None:
        super().__init__()
        self.api_key = api_key
        self.product_header = product_header
        self.indices: dict[str, Index] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.unavailable = False
        self.reject_items = 0
        self.drop_bulk_responses = 0
        self.template_status: int | None = None
        self.bulk_items_applied = 0
        self._seq = 0

    def handler(self) -> type[TrackingHandler]:
        return _Handler

    # --- inspection ----------------------------------------------------------------

    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        """``_id`` → source of every document in ``index``."""
        with self.lock:
            idx = self.indices.get(index)
            return {} if idx is None else {k: v.source for k, v in idx.docs.items()}

    def version(self, index: str, doc_id: str) -> int | None:
        with self.lock:
            idx = self.indices.get(index)
            doc = idx.docs.get(doc_id) if idx else None
            return doc.version if doc else None

    def bulk_requests(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/_bulk")]

    # --- request handling (called from handler threads) ------------------------------

    def handle(self, req: Recorded) -> tuple[int, Any, bool]:
        """(status, JSON body or None, drop the connection without answering)."""
        with self.lock:
            self.requests.append(req)
            if self.unavailable:
                return (
                    503,
                    _error(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE]"),
                    False,
                )
            problem = self._check_media_types(req)
            if problem is not None:
                return 400, problem, False
            if (
                self.api_key is not None
                and req.headers.get("authorization") != f"ApiKey {self.api_key}"
            ):
                return (
                    401,
                    _error(401, "security_exception", "unable to authenticate request"),
                    False,
                )
            parts = [unquote(p) for p in req.path.split("/") if p]
            if req.method in ("GET", "HEAD") and not parts:
                return 200, self._info(), False
            if parts and parts[-1] == "_bulk" and req.method in ("PUT", "POST") and len(parts) <= 2:
                body = self._bulk(req.body, parts[0] if len(parts) == 2 else None)
                if self.drop_bulk_responses > 0:
                    self.drop_bulk_responses -= 1
                    return 200, body, True
                return 200, body, False
            if len(parts) == 2 and parts[0] == "_index_template" and req.method in ("PUT", "POST"):
                if self.template_status is not None:
                    return (
                        self.template_status,
                        _error(
                            self.template_status,
                            "security_exception",
                            "action [indices:admin/index_template/put] is unauthorized",
                        ),
                        False,
                    )
                self.templates[parts[1]] = json.loads(req.body or b"{}")
                return 200, {"acknowledged": True}, False
            if len(parts) == 3 and parts[1] == "_doc" and req.method in ("GET", "HEAD"):
                return self._get_doc(parts[0], parts[2])
            if len(parts) == 2 and parts[1] == "_count":
                idx = self.indices.get(parts[0])
                if idx is None:
                    return (
                        404,
                        _error(404, "index_not_found_exception", f"no such index [{parts[0]}]"),
                        False,
                    )
                return 200, {"count": len(idx.docs), "_shards": _shards()}, False
            if len(parts) == 2 and parts[1] == "_refresh":
                return 200, {"_shards": _shards()}, False
            return (
                404,
                _error(
                    404, "resource_not_found_exception", f"no handler for {req.method} {req.path}"
                ),
                False,
            )

    def _check_media_types(self, req: Recorded) -> dict[str, Any] | None:
        for header in ("accept", "content-type"):
            value = req.headers.get(header, "")
            if "compatible-with=" in value:
                version = value.split("compatible-with=", 1)[1].split(";")[0].strip()
                if version not in ("8", "9"):
                    return _error(
                        400,
                        "media_type_header_exception",
                        f"Invalid media-type value on headers [{header.title()}]",
                    )
        if req.path.endswith("/_bulk"):
            ctype = req.headers.get("content-type", "")
            if "x-ndjson" not in ctype:
                return _error(
                    400, "illegal_argument_exception", f"bulk needs NDJSON, got {ctype!r}"
                )
        return None

    def _info(self) -> dict[str, Any]:
        return {
            "name": "fake-node-1",
            "cluster_name": "fake-cluster",
            "cluster_uuid": "fAkEcLuStErUuId00000000",
            "version": {
                "number": ES_VERSION,
                "build_flavor": "default",
                "build_type": "docker",
                "build_hash": "0" * 40,
                "build_date": "2025-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "10.2.2",
                "minimum_wire_compatibility_version": "8.19.0",
                "minimum_index_compatibility_version": "8.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def _get_doc(self, index: str, doc_id: str) -> tuple[int, Any, bool]:
        idx = self.indices.get(index)
        if idx is None:
            return 404, _error(404, "index_not_found_exception", f"no such index [{index}]"), False
        doc = idx.docs.get(doc_id)
        if doc is None:
            return 404, {"_index": index, "_id": doc_id, "found": False}, False
        return (
            200,
            {
                "_index": index,
                "_id": doc_id,
                "_version": doc.version,
                "_seq_no": doc.seq_no,
                "_primary_term": 1,
                "found": True,
                "_source": doc.source,
            },
            False,
        )

    def _index_for(self, name: str) -> Index:
        idx = self.indices.get(name)
        if idx is not None:
            return idx
        # The highest-priority matching template decides, like composable templates.
        best: tuple[int, dict[str, Any]] | None = None
        for template in self.templates.values():
            if any(fnmatch.fnmatchcase(name, p) for p in template.get("index_patterns", [])):
                priority = int(template.get("priority", 0))
                if best is None or priority > best[0]:
                    best = (priority, template)
        if best is not None and best[0] > 100:
            data_stream = "data_stream" in best[1]
            mappings = best[1].get("template", {}).get("mappings", {})
        else:
            data_stream = fnmatch.fnmatchcase(name, "logs-*-*")
            mappings = {}
        idx = Index(name=name, data_stream=data_stream, mappings=mappings)
        self.indices[name] = idx
        return idx

    def _bulk(self, body: bytes, default_index: str | None) -> dict[str, Any]:
        started = time.monotonic()
        lines = [line for line in body.split(b"\n") if line.strip()]
        items: list[dict[str, Any]] = []
        i = 0
        while i < len(lines):
            action = json.loads(lines[i])
            ((op, meta),) = action.items()
            i += 1
            source: dict[str, Any] | None = None
            if op != "delete":
                source = json.loads(lines[i])
                i += 1
            items.append({op: self._bulk_item(op, meta, source, default_index)})
        return {
            "errors": any(next(iter(item.values())).get("error") for item in items),
            "took": int((time.monotonic() - started) * 1000),
            "items": items,
        }

    def _bulk_item(
        self,
        op: str,
        meta: dict[str, Any],
        source: dict[str, Any] | None,
        default_index: str | None,
    ) -> dict[str, Any]:
        name = meta.get("_index", default_index)
        doc_id = meta.get("_id") or uuid.uuid4().hex[:20]
        base = {"_index": name, "_id": doc_id}
        if name is None:
            return {
                **base,
                "status": 400,
                "error": _cause("action_request_validation_exception", "index is missing"),
            }
        if name != name.lower() or name.startswith(("-", "_", "+")):
            return {
                **base,
                "status": 400,
                "error": _cause("invalid_index_name_exception", f"Invalid index name [{name}]"),
            }
        if self.reject_items > 0:
            self.reject_items -= 1
            return {
                **base,
                "status": 429,
                "error": _cause(
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation [write queue full]",
                ),
            }
        idx = self._index_for(name)
        if op == "delete":
            existed = idx.docs.pop(doc_id, None)
            return {
                **base,
                "status": 200 if existed else 404,
                "result": "deleted" if existed else "not_found",
            }
        assert source is not None
        if idx.data_stream:
            if op != "create":
                return {
                    **base,
                    "status": 400,
                    "error": _cause(
                        "illegal_argument_exception",
                        "only write ops with an op_type of create are allowed in data streams",
                    ),
                }
            if "@timestamp" not in source:
                return {
                    **base,
                    "status": 400,
                    "error": _cause(
                        "illegal_argument_exception",
                        "data stream timestamp field [@timestamp] is missing",
                    ),
                }
        existing = idx.docs.get(doc_id)
        if op == "create" and existing is not None:
            return {
                **base,
                "status": 409,
                "error": _cause(
                    "version_conflict_engine_exception",
                    f"[{doc_id}]: version conflict, document already exists "
                    f"(current version [{existing.version}])",
                ),
            }
        if op not in ("index", "create"):
            return {
                **base,
                "status": 400,
                "error": _cause("illegal_argument_exception", f"unsupported op {op}"),
            }
        self._seq += 1
        version = existing.version + 1 if existing else 1
        idx.docs[doc_id] = StoredDoc(source=source, version=version, seq_no=self._seq)
        self.bulk_items_applied += 1
        return {
            **base,
            "_version": version,
            "result": "updated" if existing else "created",
            "_shards": {"total": 2, "successful": 1, "failed": 0},
            "_seq_no": self._seq,
            "_primary_term": 1,
            "status": 200 if existing else 201,
        }


class _Handler(TrackingHandler):
    server_fake: FakeElasticsearch

    def _serve(self) -> None:
        path, query, headers, body = self.request_parts()
        req = Recorded(method=self.command, path=path, query=query, headers=headers, body=body)
        status, payload, drop = self.server_fake.handle(req)
        if drop:
            # Applied, but the answer never arrives: the client sees a dropped connection.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if self.server_fake.product_header:
            self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", COMPAT_JSON)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = _serve
    do_HEAD = _serve
    do_PUT = _serve
    do_POST = _serve
    do_DELETE = _serve


def _cause(kind: str, reason: str) -> dict[str, Any]:
    return {"type": kind, "reason": reason}


def _error(status: int, kind: str, reason: str) -> dict[str, Any]:
    cause = _cause(kind, reason)
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def _shards() -> dict[str, int]:
    return {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
