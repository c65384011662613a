"""The sample generator: deterministic, drift-free, realistic enough that every line parses."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from soc.errors import ConfigError
from soc.events import Event
from soc.parse.base import ParseConfig
from soc.samples import (
    CAMPAIGNS,
    HOSTILE_USERS,
    SAMPLE_FILES,
    SPOOFED_IP,
    Campaign,
    iter_sample_lines,
    select_files,
    write_samples,
)

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "data" / "samples"
FAILURE_KINDS = frozenset({"auth_failure", "invalid_user", "access_denied"})


def _campaign(name: str) -> Campaign:
    return next(c for c in CAMPAIGNS if c.name == name)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    write_samples(out)
    return out


# --- determinism and drift ----------------------------------------------------------
def test_same_seed_gives_identical_bytes(small_set: Path, tmp_path: Path) -> None:
    paths = write_samples(tmp_path)
    assert [p.name for p in paths] == [f.name for f in SAMPLE_FILES] + ["README.md"]
    for path in paths:
        assert path.read_bytes() == (small_set / path.name).read_bytes(), path.name


def test_different_seed_gives_different_files(small_set: Path, tmp_path: Path) -> None:
    write_samples(tmp_path, seed=8)
    for sample in SAMPLE_FILES:
        assert (tmp_path / sample.name).read_bytes() != (small_set / sample.name).read_bytes(), (
            sample.name
        )


def test_large_mode_is_deterministic_and_seeded() -> None:
    for sample in SAMPLE_FILES:
        a = list(iter_sample_lines(sample.name, lines=3000, seed=1))
        b = list(iter_sample_lines(sample.name, lines=3000, seed=1))
        c = list(iter_sample_lines(sample.name, lines=3000, seed=2))
        assert a == b, sample.name
        assert a != c, sample.name


def test_committed_samples_equal_what_the_generator_writes(small_set: Path) -> None:
    committed = sorted(p.name for p in COMMITTED.iterdir() if not p.name.startswith("."))
    generated = sorted(p.name for p in small_set.iterdir())
    assert committed == generated, "run `soc samples` to regenerate data/samples/"
    for name in generated:
        assert (COMMITTED / name).read_bytes() == (small_set / name).read_bytes(), (
            f"data/samples/{name} drifted from soc.samples: run `soc samples`"
        )


# --- shape of the small set -----------------------------------------------------------
def test_every_format_file_exists_and_is_small(small_set: Path) -> None:
    total = 0
    for sample in SAMPLE_FILES:
        data = (small_set / sample.name).read_bytes()
        lines = data.decode("utf-8").splitlines()
        assert 100 <= len(lines) <= 5000, (sample.name, len(lines))
        assert all(line.strip() for line in lines), sample.name
        assert data.endswith(b"\n")
        total += len(data)
    assert total < 1_700_000, total  # 1.64 MB with the screen-attacking names (2025-11)


def test_readme_names_every_file_campaign_and_address(small_set: Path) -> None:
    readme = (small_set / "README.md").read_text(encoding="utf-8")
    for sample in SAMPLE_FILES:
        assert f"`{sample.name}` | `{sample.format}`" in readme
    for campaign in CAMPAIGNS:
        assert f"`{campaign.name}` → `{campaign.kind}`" in readme
        for source in campaign.sources:
            assert f"`{source}`" in readme


def test_json_formats_are_one_object_per_line(small_set: Path) -> None:
    for sample in SAMPLE_FILES:
        if sample.format.endswith("_json"):
            for line in (small_set / sample.name).read_text(encoding="utf-8").splitlines():
                assert isinstance(json.loads(line), dict)


def test_every_campaign_address_appears_in_its_files(small_set: Path) -> None:
    for campaign in CAMPAIGNS:
        for name in campaign.files:
            text = (small_set / name).read_text(encoding="utf-8")
            for source in campaign.sources:
                assert source in text, (campaign.name, name, source)


def test_hostile_user_names_are_in_the_spray_files(small_set: Path) -> None:
    for name in _campaign("password_spray").files:
        text = (small_set / name).read_text(encoding="utf-8")
        if name.endswith((".json", ".ndjson")):
            text = "\n".join(
                json.dumps(json.loads(line), ensure_ascii=False) for line in text.splitlines()
            )
            needles = [json.dumps(u, ensure_ascii=False)[1:-1] for u in HOSTILE_USERS if u]
        else:
            needles = [u for u in HOSTILE_USERS if u]
        for needle in needles:
            assert needle in text, (name, needle)


def test_the_spoofing_user_name_puts_the_real_address_last(small_set: Path) -> None:
    lines = [
        line
        for line in (small_set / "auth.log").read_text(encoding="utf-8").splitlines()
        if f"admin from {SPOOFED_IP}" in line
    ]
    assert len(lines) >= 3
    for line in lines:
        assert " from 198.51.100.23 port " in line or " 198.51.100.23 port " in line, line


def test_ipv6_rotation_stays_inside_one_64() -> None:
    net = ipaddress.IPv6Network("2001:db8:bad:cafe::/64")
    sources = _campaign("ipv6_rotation").sources
    assert len(set(sources)) == 32
    assert all(ipaddress.IPv6Address(s) in net for s in sources)


def test_rsyslog_folds_repeated_failures_in_auth_log(small_set: Path) -> None:
    text = (small_set / "auth.log").read_text(encoding="utf-8")
    assert "message repeated " in text
    assert "message repeated 1 times" not in text
    assert "sshd-session[" in (small_set / "auth-sshd-session.log").read_text(encoding="utf-8")


# --- time ----------------------------------------------------------------------------
def _traditional(line: str) -> float:
    stamp = datetime.strptime("2025 " + line[:15], "%Y %b %d %H:%M:%S")
    return stamp.replace(tzinfo=UTC).timestamp()


def _rfc3339(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def _rfc5424(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 2)[1]).timestamp()


def _short_iso(line: str) -> float:
    return datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S%z").timestamp()


def _access(line: str) -> float:
    stamp = line[line.index("[") + 1 : line.index("]")]
    return datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").timestamp()


def _nginx_error(line: str) -> float:
    stamp = datetime.strptime(line[:19], "%Y/%m/%d %H:%M:%S")
    return stamp.replace(tzinfo=UTC).timestamp()


def _apache_error(line: str) -> float:
    stamp = datetime.strptime(line[1 : line.index("]")], "%a %b %d %H:%M:%S.%f %Y")
    return stamp.replace(tzinfo=UTC).timestamp()


def _ecs(line: str) -> float:
    return datetime.fromisoformat(json.loads(line)["@timestamp"]).timestamp()


def _wazuh(line: str) -> float:
    return datetime.strptime(json.loads(line)["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _journal(line: str) -> float:
    return int(json.loads(line)["__REALTIME_TIMESTAMP"]) / 1e6


STAMPS: dict[str, Callable[[str], float]] = {
    "auth.log": _traditional,
    "auth-rfc3339.log": _rfc3339,
    "auth-sshd-session.log": _rfc3339,
    "syslog-rfc5424.log": _rfc5424,
    "journal-short-iso.log": _short_iso,
    "ufw.log": _traditional,
    "nginx-access.log": _access,
    "apache-access.log": _access,
    "nginx-error.log": _nginx_error,
    "apache-error.log": _apache_error,
    "filebeat-ecs.ndjson": _ecs,
    "wazuh-alerts.json": _wazuh,
    "journal.json": _journal,
}


def test_timestamps_never_go_back_and_start_on_the_fixed_day(small_set: Path) -> None:
    assert set(STAMPS) == {f.name for f in SAMPLE_FILES}
    day_start = datetime.fromisoformat("2025-11-21T05:59:00+00:00").timestamp()
    for name, stamp in STAMPS.items():
        times = [stamp(line) for line in (small_set / name).read_text("utf-8").splitlines()]
        assert times == sorted(times), name
        assert day_start <= times[0] < times[-1] < day_start + 5 * 3600, name


def test_large_mode_keeps_time_order_and_exact_counts() -> None:
    for sample in SAMPLE_FILES:
        lines = list(iter_sample_lines(sample.name, lines=20_000, seed=3))
        assert len(lines) == 20_000, sample.name
        times = [STAMPS[sample.name](line) for line in lines]
        assert times == sorted(times), sample.name


def test_large_mode_writes_exactly_n_lines_per_file(tmp_path: Path) -> None:
    paths = write_samples(tmp_path, lines=1234, formats=["syslog", "wazuh_json"])
    assert [p.name for p in paths] == [
        f.name for f in SAMPLE_FILES if f.format in ("syslog", "wazuh_json")
    ] + ["README.md"]
    for path in paths[:-1]:
        assert len(path.read_text(encoding="utf-8").splitlines()) == 1234
    assert "1234 lines per file" in paths[-1].read_text(encoding="utf-8")


def test_large_auth_log_is_mostly_attack_traffic(tmp_path: Path) -> None:
    (path,) = write_samples(tmp_path, lines=200_000, formats=["auth.log"])[:1]
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == 200_000
    assert text.count("Failed password") > 30_000
    assert text.count("Accepted ") < 200


# --- selecting files ------------------------------------------------------------------
def test_select_files_by_format_name_or_stem() -> None:
    assert [f.name for f in select_files(["syslog"])] == [
        "auth.log",
        "auth-rfc3339.log",
        "auth-sshd-session.log",
        "syslog-rfc5424.log",
        "journal-short-iso.log",
        "ufw.log",
    ]
    assert [f.name for f in select_files(["auth", "web_error", "auth.log"])] == [
        "auth.log",
        "nginx-error.log",
        "apache-error.log",
    ]
    assert select_files(None) == list(SAMPLE_FILES)
    with pytest.raises(ConfigError, match="unknown sample format"):
        select_files(["nope"])
    with pytest.raises(ConfigError):
        write_samples(Path("/nonexistent-never-written"), lines=-1)


# --- the parsers read every line -------------------------------------------------------
@dataclass
class Seen:
    """What the parsed events of one file say, per source address."""

    kinds: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # attempts (event.count)
    failure_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    users: dict[str, set[str | None]] = field(default_factory=lambda: defaultdict(set))
    successes: dict[str, list[tuple[float, str | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    ports: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    by_ip: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def _parse_config(fmt: str) -> ParseConfig:
    return ParseConfig(format=fmt, timezone="UTC", year=2025)


def _events(path: Path, fmt: str) -> Iterator[Event]:
    from soc.parse import iter_parse_file

    for _line_no, result in iter_parse_file(path, _parse_config(fmt)):
        if isinstance(result, Event):
            yield result


def _seen(path: Path, fmt: str) -> Seen:
    seen = Seen()
    for event in _events(path, fmt):
        seen.kinds[event.kind] += 1
        ip = event.source_ip
        if ip is None:
            continue
        seen.by_ip[ip][event.kind] += event.count
        if event.kind in FAILURE_KINDS and event.outcome == "failure":
            seen.failures[ip] += event.count
            seen.failure_times[ip].extend([event.timestamp or 0.0] * event.count)
            seen.users[ip].add(event.user)
        if event.kind == "auth_success":
            seen.successes[ip].append((event.timestamp or 0.0, event.user))
        if event.kind == "firewall_drop" and event.destination_port is not None:
            seen.ports[ip].add(event.destination_port)
        if event.http_status is not None:
            seen.statuses[ip][event.http_status] += 1
        if event.kind == "web_auth_failure":
            seen.users[ip].add(event.user)
    return seen


@pytest.fixture(scope="module")
def parsed(small_set: Path) -> dict[str, Seen]:
    return {f.name: _seen(small_set / f.name, f.format) for f in SAMPLE_FILES}


def test_every_format_is_registered() -> None:
    from soc.parse import FORMATS

    for sample in SAMPLE_FILES:
        assert sample.format in FORMATS, sample.format


def test_every_line_of_the_small_set_parses(small_set: Path) -> None:
    from soc.parse import parse_file_stats

    for sample in SAMPLE_FILES:
        path = small_set / sample.name
        stats = parse_file_stats(path, _parse_config(sample.format))
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        assert stats.lines == n_lines, sample.name
        assert stats.unparsed_total == 0, (sample.name, dict(stats.unparsed))
        assert stats.events > 0, sample.name


def test_every_line_of_the_large_mode_parses(tmp_path: Path) -> None:
    from soc.parse import parse_file_stats

    write_samples(tmp_path, lines=20_000, seed=11)
    for sample in SAMPLE_FILES:
        stats = parse_file_stats(tmp_path / sample.name, _parse_config(sample.format))
        assert stats.lines == 20_000, sample.name
        assert stats.unparsed_total == 0, (sample.name, dict(stats.unparsed))


EXPECTED_KINDS = {
    "syslog": {"auth_failure", "invalid_user", "auth_success", "preauth"},
    "web_access": {"web_request"},
    "web_error": {"web_auth_failure"},
    "ecs_json": {"auth_failure", "invalid_user", "auth_success", "web_request", "firewall_drop"},
    "wazuh_json": {"auth_failure", "invalid_user", "auth_success", "web_request"},
    "journal_json": {"auth_failure", "invalid_user", "auth_success", "preauth"},
}


def test_expected_kinds_appear(parsed: dict[str, Seen]) -> None:
    for sample in SAMPLE_FILES:
        expected = {"firewall_drop"} if sample.name == "ufw.log" else EXPECTED_KINDS[sample.format]
        assert expected <= set(parsed[sample.name].kinds), (sample.name, parsed[sample.name].kinds)


def test_no_event_believes_the_spoofed_address(parsed: dict[str, Seen]) -> None:
    for name, seen in parsed.items():
        assert SPOOFED_IP not in seen.by_ip, name


def test_ssh_campaigns_are_seen_by_the_parsers(parsed: dict[str, Seen]) -> None:
    fast = _campaign("fast_brute_force")
    for name in fast.files:
        failures = parsed[name].failures[fast.sources[0]]
        assert failures >= (200 if name == "auth.log" else 25), (name, failures)

    spray = _campaign("password_spray")
    hostile = {u for u in HOSTILE_USERS if u}
    for name in spray.files:
        users = parsed[name].users[spray.sources[0]]
        assert len(users) >= 10, (name, users)
        assert hostile <= users, (name, hostile - users)

    slow = _campaign("slow_brute_force")
    for name in slow.files:
        times = sorted(parsed[name].failure_times[slow.sources[0]])
        assert len(times) >= 25, name
        assert times[-1] - times[0] >= 50 * 60, name

    dist = _campaign("distributed_brute_force")
    for name in dist.files:
        for ip in dist.sources:
            times = sorted(parsed[name].failure_times[ip])
            assert times, (name, ip)
            # each address stays at or under 5 failures in any 15 s
            for i, t in enumerate(times):
                assert sum(1 for u in times[i:] if u - t < 15) <= 5, (name, ip)

    v6 = _campaign("ipv6_rotation")
    for name in v6.files:
        for ip in v6.sources:
            assert parsed[name].failures[ip] >= 1, (name, ip)

    comp = _campaign("credential_compromise")
    ip = comp.sources[0]
    for name in comp.files:
        seen = parsed[name]
        assert seen.failures[ip] >= 3, name
        assert seen.users[ip] == {"deploy"}, name
        logins = [t for t, user in seen.successes[ip] if user == "deploy"]
        assert logins and min(logins) > min(seen.failure_times[ip]), name

    admin = _campaign("admin_typo")
    for name in admin.files:
        seen = parsed[name]
        assert any(user == "alice" for _t, user in seen.successes["198.51.100.7"]), name
        assert 1 <= seen.failures["198.51.100.7"] <= 4, name
        assert any(user == "ci" for _t, user in seen.successes["192.0.2.50"]), name


def test_web_and_firewall_campaigns_are_seen_by_the_parsers(parsed: dict[str, Seen]) -> None:
    scan = _campaign("web_scan")
    for name in scan.files:
        seen = parsed[name]
        ip = scan.sources[0]
        assert sum(seen.by_ip[ip].values()) >= 3, name
        if name.endswith("-access.log") or name.endswith((".json", ".ndjson")):
            assert seen.statuses[ip][404] >= 20, (name, seen.statuses[ip])

    auth = _campaign("web_auth_brute_force")
    ip = auth.sources[0]
    for name in auth.files:
        seen = parsed[name]
        if name.endswith("-error.log"):
            assert seen.by_ip[ip]["web_auth_failure"] >= 20, (name, seen.by_ip[ip])
            assert {"admin", "root"} <= seen.users[ip], name
        else:
            assert seen.statuses[ip][401] >= 20, (name, seen.statuses[ip])

    port_scan = _campaign("port_scan")
    for name in port_scan.files:
        ports = parsed[name].ports[port_scan.sources[0]]
        assert len(ports) >= (200 if name == "ufw.log" else 50), (name, len(ports))
