"""TAXII 2.1: a collection's indicators, as OpenCTI and other servers expose them.

Read with ``taxii2client.v21`` (``Collection.get_objects`` page by page through
``as_pages``, asking for indicators and identities only), then turned into
indicators as a STIX bundle's objects are (:mod:`soc.enrich.stix`). Credentials:
basic (``user`` + the secret ``password_secret`` names) or a bearer token (the
secret ``token_secret`` names, sent as ``Authorization: Bearer …``, as OpenCTI
expects). Every request has a timeout. Any failure (the network, the server's
answer, a missing secret) is a :class:`~soc.enrich.base.FeedError` whose text
shows no credential; the feed's previous indicators stay in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import requests
from requests.adapters import HTTPAdapter
from taxii2client.common import _HTTPConnection
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from soc import __version__
from soc.enrich.base import FeedError, IntelSpec, LoadResult
from soc.enrich.stix import WANTED_TYPES, indicators_from_objects
from soc.redact import SecretLike, redact, redact_url

#: Objects asked for per page (a server may send fewer; the client follows ``next``).
PAGE_SIZE: Final = 1000
#: A collection paging past this is refused (a server repeating ``more`` forever).
MAX_PAGES: Final = 10_000


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout (taxii2-client sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, *args, **kwargs)


def load_taxii(spec: IntelSpec, secrets: Mapping[str, SecretLike]) -> LoadResult:
    """Every IP indicator of the feed's collection (all pages)."""
    objects = fetch_objects(spec, secrets)
    return indicators_from_objects(objects, spec)


def fetch_objects(spec: IntelSpec, secrets: Mapping[str, SecretLike]) -> list[Any]:
    """The collection's indicator and identity objects, read page by page."""
    where = redact_url(spec.url)
    conn = _connection(spec, secrets)
    shown = [s for s in (secrets.get(spec.password_secret), secrets.get(spec.token_secret)) if s]
    try:
        collection = _collection(spec, conn)
        objects: list[Any] = []
        pages = as_pages(collection.get_objects, per_request=PAGE_SIZE, type=list(WANTED_TYPES))
        for count, envelope in enumerate(pages, 1):
            if count > MAX_PAGES:
                raise FeedError(f"more than {MAX_PAGES} pages", where=where)
            found = envelope.get("objects", []) if isinstance(envelope, dict) else []
            objects.extend(found if isinstance(found, list) else [])
        return objects
    except FeedError:
        raise
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        reason = exc.response.reason if exc.response is not None else ""
        raise FeedError(f"HTTP {status} {reason}".rstrip(), where=where) from None
    except (requests.RequestException, TAXIIServiceException, ValueError, KeyError) as exc:
        # Messages may quote URLs and headers: redact them, credentials included.
        message = redact(f"{type(exc).__name__}: {exc}", shown)
        raise FeedError(message[:300], where=where) from None
    finally:
        conn.close()


def _connection(spec: IntelSpec, secrets: Mapping[str, SecretLike]) -> Any:
    user = password = token = None
    if spec.password_secret:
        password = _secret(secrets, spec.password_secret, "password_secret")
        user = spec.user
    if spec.token_secret:
        token = _secret(secrets, spec.token_secret, "token_secret")
    verify: bool | str = spec.ca_certs or spec.verify_tls
    conn = _HTTPConnection(
        user=user,
        password=password,
        verify=verify,
        version="2.1",
        user_agent=f"soc-command-center/{__version__}",
    )
    if token is not None:
        conn.session.headers["Authorization"] = f"Bearer {token}"
    adapter = _TimeoutAdapter(spec.timeout)
    conn.session.mount("http://", adapter)
    conn.session.mount("https://", adapter)
    return conn


def _secret(secrets: Mapping[str, SecretLike], name: str, key: str) -> str:
    value = secrets.get(name)
    text = value if isinstance(value, str) or value is None else value.reveal()
    if not text:
        raise FeedError(f"secret {name!r} is not set", where=key)
    if any(ch in text for ch in "\r\n\0"):
        raise FeedError(f"secret {name!r} contains a line break", where=key)
    return text


def _collection(spec: IntelSpec, conn: Any) -> Any:
    """The collection: at ``url``, or found by id or title in an API root."""
    if not spec.collection:
        return Collection(spec.url, conn=conn)
    root = _api_root(spec, conn) if spec.api_root else ApiRoot(spec.url, conn=conn)
    collections = list(root.collections)
    for candidate in collections:
        if spec.collection in (candidate.id, candidate.title):
            return candidate
    known = ", ".join(sorted(str(c.title) for c in collections)) or "none"
    raise FeedError(f"no collection {spec.collection!r} (known: {known})", where="collection")


def _api_root(spec: IntelSpec, conn: Any) -> Any:
    """The API root ``api_root`` names (a title, a URL, or "default") on the discovery URL."""
    server = Server(spec.url, conn=conn)
    found = list(server.api_roots)
    default = server.default.url if server.default is not None else None
    urls = [r.url for r in found]
    for made in found:
        made.close()  # discovery makes each API root its own session: ours serves them all
    roots = [ApiRoot(url, conn=conn) for url in urls]
    wanted = spec.api_root
    if wanted == "default":
        picked = [r for r in roots if r.url == default]
    else:
        picked = [r for r in roots if r.url.rstrip("/") == wanted.rstrip("/")]
        picked = picked or [r for r in roots if r.title == wanted]
    if picked:
        return picked[0]
    known = ", ".join(urls) or "none"
    raise FeedError(f"no API root {wanted!r} (known: {known})", where="api_root")


__all__ = ["MAX_PAGES", "PAGE_SIZE", "fetch_objects", "load_taxii"]
