"""TAXII 2.1: a collection read through taxii2-client from a server speaking the protocol."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from soc.enrich import Enricher, IntelSpec
from soc.redact import process_secrets
from tests.enrich.fake_taxii import COLLECTION_ID, MEDIA_TYPE, FakeTaxii
from tests.enrich.intel_data import ATTACKER, IPV6_HOST, NOW, SUBNET_HOST, as_dicts

PASSWORD_SECRET = "taxii_password"  # noqa: S105 (a secret's name)


@pytest.fixture
def server() -> Iterator[FakeTaxii]:
    with FakeTaxii(as_dicts(), page_size=2) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    process_secrets().clear()


def _feed(server: FakeTaxii, **options: str) -> IntelSpec:
    values = {"url": server.collection_url, **options}
    return IntelSpec(
        name="opencti",
        type="taxii",
        user=server.user,
        password_secret=PASSWORD_SECRET,
        timeout=5,
        **values,  # type: ignore[arg-type]
    )


def _enricher(server: FakeTaxii, **options: str) -> Enricher:
    return Enricher([_feed(server, **options)], secrets={PASSWORD_SECRET: server.password})


def test_a_collection_is_read_page_by_page_with_basic_auth(server: FakeTaxii) -> None:
    enricher = _enricher(server)
    (status,) = enricher.refresh_now()
    assert status.last_error is None, status.last_error
    assert (status.indicators, status.networks) == (4, 5)
    assert status.skipped == {"not an IP indicator": 2, "revoked": 1, "unsupported IP pattern": 1}
    # the malware object is never sent: the product asks for indicators and identities
    pages = server.object_pages()
    assert all(p["match[type]"] == ["indicator,identity"] for p in pages)
    assert [p.get("next") for p in pages] == [None, ["2"], ["4"], ["6"], ["8"]]
    for _, _, headers in server.requests:
        assert headers["accept"].replace(" ", "") == MEDIA_TYPE
        expected = base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
        assert headers["authorization"] == f"Basic {expected}"
    (hit,) = enricher.lookup(ATTACKER, NOW)
    assert (hit["indicator"], hit["source"], hit["confidence"]) == (
        "Known SSH brute-forcer",
        "opencti / ACME CERT",
        85,
    )
    assert enricher.lookup(IPV6_HOST, NOW) != []
    assert enricher.lookup(SUBNET_HOST, NOW) != []


@pytest.mark.parametrize(
    ("where", "options"),
    [
        ("api root", {"collection": "Indicators"}),
        ("api root", {"collection": COLLECTION_ID}),
        ("discovery", {"api_root": "default", "collection": "Indicators"}),
        ("discovery", {"api_root": "Intel root", "collection": "Indicators"}),
    ],
)
def test_a_collection_is_found_by_title_or_id(
    server: FakeTaxii, where: str, options: dict[str, str]
) -> None:
    url = server.api_root_url if where == "api root" else server.discovery_url
    (status,) = _enricher(server, url=url, **options).refresh_now()
    assert (status.last_error, status.indicators) == (None, 4)


def test_an_unknown_collection_names_the_known_ones(server: FakeTaxii) -> None:
    enricher = _enricher(server, url=server.api_root_url, collection="Malware")
    (status,) = enricher.refresh_now()
    assert status.last_error is not None
    assert "no collection 'Malware' (known: Indicators)" in status.last_error


def test_a_bearer_token_is_sent_as_authorization() -> None:
    token = "octi-token-5b7f0c2e9d"  # noqa: S105 (a test credential)
    with FakeTaxii(as_dicts(), token=token) as fake:
        spec = IntelSpec(
            name="opencti",
            type="taxii",
            url=fake.collection_url,
            token_secret="opencti_token",  # noqa: S106 (its name)
        )
        (status,) = Enricher([spec], secrets={"opencti_token": token}).refresh_now()
        assert (status.last_error, status.indicators) == (None, 4)
        assert {h["authorization"] for _, _, h in fake.requests} == {f"Bearer {token}"}
        (status,) = Enricher([spec], secrets={"opencti_token": "wrong-token-1"}).refresh_now()
        assert status.last_error is not None
        assert "HTTP 401" in status.last_error


def test_a_refused_password_is_reported_once_and_never_shown(
    server: FakeTaxii, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wrong-Secret-Value-4411"
    enricher = Enricher([_feed(server)], secrets={PASSWORD_SECRET: wrong})
    with caplog.at_level(logging.DEBUG, logger="soc.enrich"):
        enricher.refresh_now()
        (status,) = enricher.refresh_now()
    assert status.last_error is not None
    assert "HTTP 401" in status.last_error
    assert status.failures == 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # the same failure again is counted, not logged again
    assert "opencti" in warnings[0].getMessage()
    assert wrong not in caplog.text
    assert wrong not in repr(enricher.status())


def test_a_missing_secret_is_a_feed_error(server: FakeTaxii) -> None:
    (status,) = Enricher([_feed(server)], secrets={}).refresh_now()
    assert status.last_error is not None
    assert "secret 'taxii_password' is not set" in status.last_error
    assert server.requests == []  # nothing sent without the credentials


def test_the_server_going_down_keeps_the_indicators_in_force(server: FakeTaxii) -> None:
    enricher = _enricher(server)
    enricher.refresh_now()
    server.stop()
    (status,) = enricher.refresh_now()
    assert status.last_error is not None
    assert "ConnectionError" in status.last_error
    assert (status.indicators, status.failures) == (4, 1)
    assert status.last_refresh is not None and status.last_attempt is not None
    assert [h["indicator"] for h in enricher.lookup(ATTACKER, NOW)] == ["Known SSH brute-forcer"]
    # back up with one indicator fewer: the new set replaces the old one
    server.objects = [o for o in server.objects if o.get("name") != "Known SSH brute-forcer"]
    server.start()
    (status,) = enricher.refresh_now()
    assert (status.last_error, status.failures, status.indicators) == (None, 0, 3)
    assert enricher.lookup(ATTACKER, NOW) == []


def test_a_server_that_is_not_taxii_2_1_is_an_error(server: FakeTaxii) -> None:
    # a URL the server answers with 404: the client's HTTP error, as a feed error
    (status,) = _enricher(server, url=f"{server.url}/api1/collections/nope/").refresh_now()
    assert status.last_error is not None
    assert "HTTP 404" in status.last_error
