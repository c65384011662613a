"""Blocklists: comments, CIDRs and garbage lines, from a file or over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.enrich import Enricher, IntelSpec
from tests.enrich.intel_data import NOW
from tests.fake_http import FakeService, TrackingHandler

LIST = """\
# Example blocklist (FireHOL style)
; a Spamhaus-style comment line

203.0.113.9
198.51.100.0/24 ; SBL123456
192.0.2.77/24   # host bits: the /24
2001:db8:bad::/48\t# an IPv6 network
203.0.113.9
0.0.0.0/0
hello world
1.2.3.4-1.2.3.9
10.0.0.1#no-space-before-the-comment
  192.0.2.250   \t
"""


def _blocklist(tmp_path: Path, text: str = LIST, **options: object) -> tuple[Enricher, Path]:
    path = tmp_path / "drop.txt"
    path.write_text(text, encoding="utf-8")
    spec = IntelSpec(name="drop", type="blocklist", path=str(path), **options)  # type: ignore[arg-type]
    return Enricher([spec]), path


def test_comments_cidrs_and_garbage_lines(tmp_path: Path) -> None:
    enricher, _ = _blocklist(tmp_path, labels=["spamhaus-drop"])
    (status,) = enricher.refresh_now()
    assert status.last_error is None
    assert (status.indicators, status.networks) == (1, 5)  # one list, five distinct networks
    assert status.skipped == {"not an address": 3, "network too broad": 1, "duplicate": 1}
    assert [h["network"] for h in enricher.lookup("192.0.2.5", NOW)] == ["192.0.2.0/24"]
    assert [h["network"] for h in enricher.lookup("198.51.100.200", NOW)] == ["198.51.100.0/24"]
    assert [h["network"] for h in enricher.lookup("2001:db8:bad:1::9", NOW)] == [
        "2001:db8:bad::/48"
    ]
    (hit,) = enricher.lookup("203.0.113.9", NOW)
    assert hit == {
        "indicator": "drop blocklist",
        "feed": "drop",
        "source": "drop",
        "confidence": 70,  # the default for feeds without one
        "labels": ["spamhaus-drop"],
        "valid_until": None,
        "address": "203.0.113.9",
        "network": "203.0.113.9/32",
        "id": "blocklist:drop",
    }
    # surrounding blanks are no part of an entry; one indicator: its longest network only
    assert [h["network"] for h in enricher.lookup("192.0.2.250", NOW)] == ["192.0.2.250/32"]
    for unlisted in ("10.0.0.1", "1.2.3.4", "8.8.8.8", "203.0.113.10"):
        assert enricher.lookup(unlisted, NOW) == [], unlisted


def test_a_more_specific_network_comes_first(tmp_path: Path) -> None:
    text = "192.0.2.0/24\n192.0.2.128/25\n192.0.2.200\n"
    enricher, _ = _blocklist(tmp_path, text)
    enricher.refresh_now()
    # one indicator: its longest matching network is the one reported
    assert [h["network"] for h in enricher.lookup("192.0.2.200", NOW)] == ["192.0.2.200/32"]
    assert [h["network"] for h in enricher.lookup("192.0.2.130", NOW)] == ["192.0.2.128/25"]


def test_a_missing_file_is_an_error_in_the_status_not_a_crash(tmp_path: Path) -> None:
    enricher, path = _blocklist(tmp_path)
    enricher.refresh_now()
    path.unlink()
    (status,) = enricher.refresh_now()
    assert status.last_error is not None
    assert "cannot read" in status.last_error
    assert status.networks == 5  # the previous list stays in force
    assert enricher.lookup("203.0.113.9", NOW) != []


class ListServer(FakeService):
    """Serves a blocklist as text/plain at /drop.txt (404 elsewhere)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def handler(self) -> type[TrackingHandler]:
        return _ListHandler


class _ListHandler(TrackingHandler):
    server_fake: ListServer

    def do_GET(self) -> None:
        path, _, _, _ = self.request_parts()
        found = path == "/drop.txt"
        body = self.server_fake.text.encode() if found else b"not found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_blocklist_url_is_downloaded_and_an_outage_keeps_the_old_list() -> None:
    server = ListServer(LIST).start()
    try:
        spec = IntelSpec(name="drop", type="blocklist", url=f"{server.url}/drop.txt", timeout=5)
        enricher = Enricher([spec])
        (status,) = enricher.refresh_now()
        assert (status.networks, status.last_error) == (5, None)
        server.stop()
        (status,) = enricher.refresh_now()
        assert status.last_error is not None
        assert "cannot download" in status.last_error
        assert (status.networks, status.failures) == (5, 1)
        assert enricher.lookup("203.0.113.9", NOW) != []
        server.text = "192.0.2.99\n"
        server.start()
        (status,) = enricher.refresh_now()
        assert (status.networks, status.last_error, status.failures) == (1, None, 0)
        assert enricher.lookup("203.0.113.9", NOW) == []
        assert enricher.lookup("192.0.2.99", NOW) != []
    finally:
        server.stop()


def test_an_http_error_is_reported_with_its_status() -> None:
    with ListServer(LIST) as server:
        spec = IntelSpec(name="drop", type="blocklist", url=f"{server.url}/missing.txt")
        (status,) = Enricher([spec]).refresh_now()
    assert status.last_error is not None
    assert "HTTP 404" in status.last_error
    assert status.indicators == 0


@pytest.mark.parametrize("confidence", [30, 95])
def test_the_feed_confidence_is_every_entry_s_confidence(tmp_path: Path, confidence: int) -> None:
    enricher, _ = _blocklist(tmp_path, "203.0.113.9\n", confidence=confidence)
    enricher.refresh_now()
    assert enricher.lookup("203.0.113.9", NOW)[0]["confidence"] == confidence
