"""Fixtures of the intel tests: a feed file written from the shared STIX content."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.enrich import Enricher, IntelSpec
from tests.enrich.intel_data import bundle_json


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    """The shared STIX 2.1 bundle, as a file."""
    path = tmp_path / "cert.json"
    path.write_text(bundle_json(), encoding="utf-8")
    return path


@pytest.fixture
def stix_enricher(bundle_path: Path) -> Enricher:
    """An enricher with the shared bundle loaded as the feed ``cert``."""
    enricher = Enricher([IntelSpec(name="cert", type="stix", path=str(bundle_path))])
    (status,) = enricher.refresh_now()
    assert status.last_error is None, status.last_error
    return enricher
