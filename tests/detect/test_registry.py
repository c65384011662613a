"""Rules as units: what each module owns, and that the registry is the only wiring."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.config import build_dataclass
from soc.detect import DetectConfig, Detector
from soc.detect import rules as registry
from soc.detect.rules.base import AUTH, NET, USERS, WEB, Params
from soc.events import INCIDENT_KINDS, SEVERITIES
from tests.detect.builders import T0, failure, success

ROOT = Path(__file__).resolve().parents[2]
CORE = {
    "threshold",
    "window_seconds",
    "failure_kinds",
    "forgive_seconds",
    "known_login_seconds",
    "allow_list",
    "include_host_addresses",
    "ipv6_prefix",
    "quiet_seconds",
    "evidence_lines",
    "sample_size",
    "max_keys",
    "max_users",
    "max_distinct",
    "max_value_length",
    "max_threshold",
    "severity_medium_failures",
    "severity_high_failures",
    "severity_medium_breadth",
    "severity_high_breadth",
}


def test_every_incident_kind_has_one_rule_owning_everything_about_it() -> None:
    rules = registry.rules()
    assert sorted(r.name for r in rules) == sorted(INCIDENT_KINDS)
    for rule in rules:
        assert rule.family in (AUTH, WEB, NET, USERS), rule.name
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", rule.technique[0]), rule.name
        assert rule.technique[1], rule.name
        assert rule.severity in SEVERITIES, rule.name
        assert rule.actions and any("{block}" in a for a in rule.actions), rule.name
        assert (rule.hits is None) == (rule.family == USERS), rule.name
        assert issubclass(rule.params, Params)
        for f in dataclasses.fields(rule.params):  # type: ignore[arg-type]
            assert f.metadata.get("doc"), (rule.name, f.name)


def test_detect_config_is_the_core_settings_plus_every_rules_keys() -> None:
    fields = [f.name for f in dataclasses.fields(DetectConfig)]
    assert len(fields) == len(set(fields))
    owned = {f.name for _, _, f in registry.param_fields()}
    assert set(fields) == CORE | owned
    assert not CORE & owned
    # A rule's keys are validated by the rule itself, named in the error.
    with pytest.raises(Exception, match="spray_users: must be at most max_distinct"):
        build_dataclass(DetectConfig, {"spray_users": 5000}, "[detect]")


def test_the_readme_table_lists_every_rule_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in registry.rules():
        row = re.search(rf"^\| `{rule.name}` \|.*\| (\S+) \| (\w+) \|$", readme, re.MULTILINE)
        assert row is not None, rule.name
        assert row.groups() == (rule.technique[0], rule.severity), rule.name
    for name, _, f in registry.param_fields():
        assert f"`{f.name}`" in readme, (name, f.name)


@pytest.fixture
def with_toy_rule(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    modules = {**registry.RULE_MODULES, "honeypot_login": "tests.detect.toy_rule:RULE"}
    monkeypatch.setattr(registry, "RULE_MODULES", modules)
    registry.rules.cache_clear()
    yield
    registry.rules.cache_clear()


def test_a_rule_is_added_by_its_module_and_one_registry_line(with_toy_rule: None) -> None:
    detector = Detector(DetectConfig())
    opened = detector.process([success(T0, "198.51.100.7", "alice")])
    opened += detector.flush()
    [incident] = {i.detector_key: i for i in opened}.values()
    assert (incident.kind, incident.severity, incident.technique) == (
        "honeypot_login",
        "high",
        "T1078",
    )
    # The built-in rules still run beside it.
    detector = Detector(DetectConfig())
    burst = detector.process([failure(T0 + i, "203.0.113.5") for i in range(6)])
    assert {i.kind for i in burst} == {"brute_force"}
    assert registry.actions_by_kind()["honeypot_login"][1].startswith("Nobody")
