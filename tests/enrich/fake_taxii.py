"""A TAXII 2.1 server small enough to read, speaking the real protocol.

Discovery at ``/taxii2/``, one API root at ``/api1/``, its ``/collections/``
and one collection whose ``/objects/`` are paged (``limit`` honoured up to
``page_size``, ``more``/``next`` in the envelope) and filtered by
``match[type]``. Every answer is ``application/taxii+json;version=2.1``; a
request whose ``Accept`` does not ask for it gets 406, one without the right
basic credentials (or bearer token) gets 401. Requests are recorded.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from tests.fake_http import FakeService, TrackingHandler

MEDIA_TYPE = "application/taxii+json;version=2.1"
COLLECTION_ID = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
COLLECTION_TITLE = "Indicators"


class FakeTaxii(FakeService):
    """One collection of STIX objects behind basic auth (or a bearer token)."""

    def __init__(
        self,
        objects: list[dict[str, Any]],
        *,
        user: str = "analyst@example.org",
        password: str = "Taxii-Passw0rd-7781",  # noqa: S107 (a test credential)
        token: str | None = None,
        page_size: int = 2,
    ) -> None:
        super().__init__()
        self.objects = objects
        self.user = user
        self.password = password
        self.token = token
        self.page_size = page_size
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.requests_lock = threading.Lock()

    def handler(self) -> type[TrackingHandler]:
        return _Handler

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/taxii2/"

    @property
    def api_root_url(self) -> str:
        return f"{self.url}/api1/"

    @property
    def collection_url(self) -> str:
        return f"{self.url}/api1/collections/{COLLECTION_ID}/"

    def object_pages(self) -> list[dict[str, list[str]]]:
        """The query of every objects request, in order."""
        with self.requests_lock:
            return [query for path, query, _ in self.requests if path.endswith("/objects/")]

    def authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if self.token is not None:
            return given == f"Bearer {self.token}"
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return given == f"Basic {expected}"


class _Handler(TrackingHandler):
    server_fake: FakeTaxii

    def do_GET(self) -> None:
        fake = self.server_fake
        path, query, headers, _ = self.request_parts()
        with fake.requests_lock:
            fake.requests.append((path, query, headers))
        if not fake.authorized(headers):
            self._send(401, {"title": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="taxii"'})
            return
        accept = headers.get("accept", "").replace(" ", "")
        if "application/taxii+json" not in accept or "version=2.1" not in accept:
            self._send(406, {"title": "Not Acceptable"})
            return
        base = fake.url
        collection = {
            "id": COLLECTION_ID,
            "title": COLLECTION_TITLE,
            "can_read": True,
            "can_write": False,
            "media_types": ["application/stix+json;version=2.1"],
        }
        if path == "/taxii2/":
            root = f"{base}/api1/"
            self._send(200, {"title": "Fake TAXII", "default": root, "api_roots": [root]})
        elif path == "/api1/":
            self._send(
                200,
                {"title": "Intel root", "versions": [MEDIA_TYPE], "max_content_length": 10**7},
            )
        elif path == "/api1/collections/":
            self._send(200, {"collections": [collection]})
        elif path == f"/api1/collections/{COLLECTION_ID}/":
            self._send(200, collection)
        elif path == f"/api1/collections/{COLLECTION_ID}/objects/":
            self._objects(query)
        else:
            self._send(404, {"title": "Not Found"})

    def _objects(self, query: dict[str, list[str]]) -> None:
        fake = self.server_fake
        types = query.get("match[type]", [""])[0].split(",")
        wanted = [o for o in fake.objects if not types[0] or o.get("type") in types]
        limit = min(int(query.get("limit", [str(fake.page_size)])[0]), fake.page_size)
        start = int(query.get("next", ["0"])[0])
        page = wanted[start : start + limit]
        envelope: dict[str, Any] = {"more": start + limit < len(wanted), "objects": page}
        if envelope["more"]:
            envelope["next"] = str(start + limit)
        self._send(200, envelope)

    def _send(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", MEDIA_TYPE)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
