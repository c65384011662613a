"""STIX 2.1: the IP indicators of bundles (files, folders, or a TAXII collection's objects).

Each object is parsed with the ``stix2`` library (``stix2.parse(…,
allow_custom=True)``) one by one, so one malformed object is skipped and counted
instead of losing the bundle. An indicator is kept when its ``pattern_type`` is
``stix`` and its pattern compares ``ipv4-addr:value`` or ``ipv6-addr:value``
with ``=`` or ``ISSUBSET`` against an address or a CIDR (or ``IN`` a list of
them), alone or in ORs (of comparisons or of observations). Under an OR, an
operand about something else (a domain) is left out: each network kept is one
the pattern does match, so a hit is never claimed for an address the pattern
would not match. Anything that narrows a match (``AND``, ``NOT``, ``WITHIN``,
``REPEATS``, ``START…STOP``, ``FOLLOWEDBY``) cannot be judged from an address
alone, and other indicators (domains, URLs, hashes) are not about addresses:
both are skipped and counted by reason, never an error. Of several versions of
one indicator the latest (``modified``) counts; a revoked one is ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import stix2
from stix2 import patterns
from stix2.pattern_visitor import create_pattern_object

from soc.enrich.base import FeedError, Indicator, IntelSpec, LoadResult, Network, parse_network
from soc.redact import SecretLike

#: Object types worth parsing: indicators, and identities (who created them).
WANTED_TYPES: Final = ("indicator", "identity")
_IP_TYPES: Final = ("ipv4-addr", "ipv6-addr")
_MAX_LABELS: Final = 10


def load_stix(spec: IntelSpec, secrets: Mapping[str, SecretLike]) -> LoadResult:
    """The IP indicators of a bundle file, or of every ``*.json`` bundle in a folder."""
    del secrets  # a local file needs none
    path = Path(spec.path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise FeedError("no *.json bundle in this folder", where=spec.path)
    elif path.is_file():
        files = [path]
    else:
        raise FeedError("no such file or folder", where=spec.path)
    objects: list[Any] = []
    skipped: Counter[str] = Counter()
    readable = 0
    for file in files:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            skipped["unreadable bundle file"] += 1
            continue
        if not isinstance(document, dict) or document.get("type") != "bundle":
            skipped["not a STIX bundle"] += 1
            continue
        readable += 1
        found = document.get("objects", [])
        objects.extend(found if isinstance(found, list) else [])
    if not readable:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
        raise FeedError(f"no readable STIX bundle ({reasons})", where=spec.path)
    result = indicators_from_objects(objects, spec)
    result.skipped.update(skipped)
    return result


def indicators_from_objects(objects: Iterable[Any], spec: IntelSpec) -> LoadResult:
    """The IP indicators among STIX 2.1 objects (plain JSON dicts), and what was skipped."""
    result = LoadResult()
    skipped = result.skipped
    identities: dict[str, str] = {}
    latest: dict[str, Any] = {}
    for raw in objects:
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in WANTED_TYPES:
            skipped["not an indicator" if isinstance(raw, dict) else "not a STIX object"] += 1
            continue
        if kind == "indicator":
            reason = _prefilter(raw)
            if reason is not None:
                skipped[reason] += 1
                continue
        try:
            parsed = stix2.parse(raw, allow_custom=True, version="2.1")
        except Exception:  # the library raises many kinds for a malformed object
            skipped["invalid STIX object"] += 1
            continue
        if kind == "identity":
            identities[str(parsed.id)] = str(parsed.get("name", ""))
            continue
        confidence = parsed.get("confidence")
        if confidence is not None and not (isinstance(confidence, int) and 0 <= confidence <= 100):
            skipped["invalid STIX object"] += 1  # STIX confidence is 0-100
            continue
        previous = latest.get(str(parsed.id))
        if previous is not None:
            skipped["older version"] += 1
            if _modified(previous) >= _modified(parsed):
                continue
        latest[str(parsed.id)] = parsed
    for indicator in latest.values():
        if indicator.get("revoked", False):
            skipped["revoked"] += 1
            continue
        networks, reason = _networks(str(indicator.pattern))
        if reason is not None:
            skipped[reason] += 1
            continue
        result.indicators.append(_indicator(indicator, networks, spec, identities))
    return result


def _prefilter(raw: Mapping[str, Any]) -> str | None:
    """Why an indicator is skipped without parsing it (the cheap checks), if it is."""
    if raw.get("pattern_type") != "stix":
        return "not a STIX pattern"
    pattern = raw.get("pattern")
    if not isinstance(pattern, str) or not any(f"{t}:" in pattern for t in _IP_TYPES):
        return "not an IP indicator"
    return None


def _modified(obj: Any) -> datetime:
    value = obj.get("modified") or obj.get("created")
    return value if isinstance(value, datetime) else datetime.min


def _indicator(
    obj: Any, networks: list[Network], spec: IntelSpec, identities: Mapping[str, str]
) -> Indicator:
    labels = obj.get("labels") or obj.get("indicator_types") or spec.labels
    confidence = obj.get("confidence")
    creator = identities.get(str(obj.get("created_by_ref", "")), "")
    valid_from, valid_until = obj.get("valid_from"), obj.get("valid_until")
    return Indicator(
        id=str(obj.id),
        name=str(obj.get("name") or obj.id),
        feed=spec.name,
        source=f"{spec.name} / {creator}" if creator else spec.name,
        confidence=int(confidence) if isinstance(confidence, int) else spec.confidence,
        labels=tuple(str(label) for label in list(labels)[:_MAX_LABELS]),
        networks=tuple(networks),
        valid_from=valid_from.timestamp() if isinstance(valid_from, datetime) else None,
        valid_until=valid_until.timestamp() if isinstance(valid_until, datetime) else None,
    )


def _networks(pattern: str) -> tuple[list[Network], str | None]:
    """The networks a pattern matches exactly, or the reason it is skipped."""
    try:
        tree = create_pattern_object(pattern, version="2.1")
    except Exception:  # the pattern visitor raises ValueError and its own kinds
        return [], "unsupported IP pattern"
    values: list[str] = []
    if not _collect(tree, values):
        return [], "unsupported IP pattern"
    networks: list[Network] = []
    reason: str | None = None
    for value in values:
        network, refused = parse_network(value)
        if network is None:
            reason = reason or refused
        elif network not in networks:
            networks.append(network)
    if not networks:
        return [], reason or "not an IP indicator"
    return networks, None


def _collect(node: Any, values: list[str]) -> bool:
    """Add the addresses an OR-only pattern compares to; False if it narrows the match.

    Under an OR, an operand that is not about an address (a domain) is ignored:
    the pattern still matches whenever one of the address operands does.
    """
    if isinstance(node, patterns.ParentheticalExpression):
        return _collect(node.expression, values)
    if isinstance(node, patterns.ObservationExpression):
        return _collect(node.operand, values)
    if isinstance(node, patterns.OrObservationExpression | patterns.OrBooleanExpression):
        found = [_collect(operand, values) for operand in node.operands]
        return any(found)
    if not isinstance(
        node,
        patterns.EqualityComparisonExpression
        | patterns.IsSubsetComparisonExpression
        | patterns.InComparisonExpression,
    ):
        return False
    lhs, rhs = node.lhs, node.rhs
    if (
        node.negated
        or not isinstance(lhs, patterns.ObjectPath)
        or lhs.object_type_name not in _IP_TYPES
        or [getattr(c, "property_name", None) for c in lhs.property_path] != ["value"]
    ):
        return False
    constants = rhs.value if isinstance(rhs, patterns.ListConstant) else [rhs]
    strings = [str(c.value) for c in constants if isinstance(c, patterns.StringConstant)]
    values.extend(strings)
    return bool(strings)


__all__ = ["WANTED_TYPES", "indicators_from_objects", "load_stix"]
