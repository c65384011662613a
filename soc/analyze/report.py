"""The report: what a model must return, how it is checked, and how it is shown.

A model returns JSON (:data:`MODEL_SCHEMA`): a summary, what happened, an
assessment, a severity and a confidence. It is checked in two steps:

1. **schema**: the JSON parses, has every field with the right type, length and
   value, and its severity is the detector's (the rules decide severity; the
   model explains it);
2. **grounding**: every IP address, time, date, number and quoted user name the
   text states must appear in the fact sheet. A model that invents an address
   or a count fails.

The recommended actions are not the model's: they come from a fixed policy per
incident kind (:func:`policy_actions`), built from validated facts only, so no
attacker-written text can choose what the analyst is told to do. The markdown
(:func:`render_markdown`) has fixed sections, and every model-written text in it
is escaped so that it renders as text: no HTML, no links, no images.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from soc.events import (
    BRUTE_FORCE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SEVERITIES,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
    is_ip_address,
)
from soc.text import markdown_text

CONFIDENCES: Final = ("low", "medium", "high")
#: Longest text a model may write per field (characters).
MAX_FIELD_CHARS: Final = {"summary": 400, "what_happened": 1200, "assessment": 800}

#: What a model must return (a JSON Schema object, as providers pass it on).
MODEL_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "summary": {
            "type": "string",
            "description": "one or two sentences",
            "maxLength": MAX_FIELD_CHARS["summary"],
        },
        "what_happened": {
            "type": "string",
            "description": "the attack, step by step",
            "maxLength": MAX_FIELD_CHARS["what_happened"],
        },
        "assessment": {
            "type": "string",
            "description": "why it matters, and how sure",
            "maxLength": MAX_FIELD_CHARS["assessment"],
        },
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "confidence": {"type": "string", "enum": list(CONFIDENCES)},
    },
    "required": ["summary", "what_happened", "assessment", "severity", "confidence"],
}

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])")
_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_NUMBER = re.compile(r"(?<![\w.:-])\d[\d,]*(?:\.\d+)?(?![\w:])")
_QUOTED_USER = re.compile(
    r"\b(?:user(?:name)?s?|accounts?|login)\s*[:=]?\s*[\"'`“‘]([^\"'`”’\n]{1,200})[\"'`”’]",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Validation:
    """The outcome of checking a model's reply: the parsed fields and what is wrong."""

    fields: dict[str, Any] = field(default_factory=dict)
    schema_errors: list[str] = field(default_factory=list)
    grounding_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.schema_errors and not self.grounding_errors

    @property
    def errors(self) -> list[str]:
        return [*self.schema_errors, *self.grounding_errors]


def validate_reply(text: str, sheet: Mapping[str, Any]) -> Validation:
    """Check a model's JSON reply against the schema, then against the fact sheet."""
    result = Validation()
    try:
        data = json.loads(_strip_fence(text))
    except ValueError as exc:
        result.schema_errors.append(f"not valid JSON: {exc}")
        return result
    if not isinstance(data, dict):
        result.schema_errors.append("the reply must be a JSON object")
        return result
    for name in ("summary", "what_happened", "assessment"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            result.schema_errors.append(f"{name}: must be a non-empty string")
        elif len(value) > MAX_FIELD_CHARS[name]:
            result.schema_errors.append(f"{name}: longer than {MAX_FIELD_CHARS[name]} characters")
    if data.get("confidence") not in CONFIDENCES:
        result.schema_errors.append(f"confidence: must be one of {', '.join(CONFIDENCES)}")
    expected = sheet_subject(sheet).get("severity")
    if data.get("severity") not in SEVERITIES:
        result.schema_errors.append(f"severity: must be one of {', '.join(SEVERITIES)}")
    elif data.get("severity") != expected:
        result.schema_errors.append(
            f"severity: {data.get('severity')!r} differs from the evidence-based severity "
            f"{expected!r}; explain the facts, do not re-rate them"
        )
    unknown = sorted(set(data) - set(MODEL_SCHEMA["properties"]))
    if unknown:
        result.schema_errors.append(f"unexpected fields: {', '.join(unknown)}")
    if result.schema_errors:
        return result
    result.fields = {k: data[k] for k in MODEL_SCHEMA["required"]}
    text_fields = [data["summary"], data["what_happened"], data["assessment"]]
    result.grounding_errors = grounding_errors("\n".join(text_fields), sheet)
    return result


def sheet_subject(sheet: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a fact sheet is about: its ``incident`` block, or its ``batch`` block."""
    subject = sheet.get("incident") or sheet.get("batch") or {}
    return subject if isinstance(subject, Mapping) else {}


def _strip_fence(text: str) -> str:
    # Some models wrap JSON in a ```json fence despite being asked not to.
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped


def grounding_errors(text: str, sheet: Mapping[str, Any]) -> list[str]:
    """What ``text`` states that the fact sheet does not hold (empty: grounded)."""
    known = _Known(sheet)
    errors: list[str] = []
    for match in _IPV4.finditer(text):
        if not known.has_ip(match.group(0)):
            errors.append(f"IP address {match.group(0)} is not in the facts")
    for match in _IPV6.finditer(text):
        candidate = match.group(0)
        if is_ip_address(candidate) and not known.has_ip(candidate):
            errors.append(f"IP address {candidate} is not in the facts")
    scrubbed = _IPV6.sub(
        lambda m: " " if is_ip_address(m.group(0)) else m.group(0), _IPV4.sub(" ", text)
    )
    for match in _DATE.finditer(scrubbed):
        if match.group(0) not in known.dates:
            errors.append(f"date {match.group(0)} is not in the facts")
    scrubbed = _DATE.sub(" ", scrubbed)
    for match in _TIME.finditer(scrubbed):
        hh, mm, ss = int(match.group(1)), match.group(2), match.group(3)
        stated = f"{hh:02d}:{mm}" + (f":{ss}" if ss else "")
        if not any(t.startswith(stated) for t in known.times):
            errors.append(f"time {match.group(0)} is not in the facts")
    scrubbed = _TIME.sub(" ", scrubbed)
    for match in _NUMBER.finditer(scrubbed):
        number = match.group(0).replace(",", "")
        if number not in known.numbers:
            errors.append(f"number {match.group(0)} is not in the facts")
    for match in _QUOTED_USER.finditer(text):
        name = match.group(1)
        if name not in known.strings:
            errors.append(f"user {name!r} is not in the facts")
    return sorted(dict.fromkeys(errors))


class _Known:
    """Everything a fact sheet holds, in the forms a text may state it."""

    def __init__(self, sheet: Mapping[str, Any]) -> None:
        self.ips: set[str] = set()
        self.numbers: set[str] = set()
        self.strings: set[str] = set()
        self.dates: set[str] = set()
        self.times: set[str] = set()
        for value in _leaves(sheet):
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                self._add_number(value)
                continue
            text = str(value)
            self.strings.add(text)
            if is_ip_address(text):
                self.ips.add(str(ipaddress.ip_address(text)))
            elif "/" in text:  # a network (203.0.113.0/24): its address may be stated
                with contextlib.suppress(ValueError):
                    self.ips.add(str(ipaddress.ip_network(text, strict=False).network_address))
            for date in _DATE.finditer(text):
                self.dates.add(date.group(0))
            for time in _TIME.finditer(text):
                self.times.add(f"{int(time.group(1)):02d}:{time.group(2)}:{time.group(3) or '00'}")
            for number in re.finditer(r"\d+(?:\.\d+)?", text):
                self._add_number(float(number.group(0)))
        # Small counting words a report needs whatever the facts (one attacker, two steps).
        for n in range(0, 11):
            self.numbers.add(str(n))

    def _add_number(self, value: float) -> None:
        self.numbers.add(f"{value:g}" if value != int(value) else str(int(value)))
        self.numbers.add(repr(float(value)))

    def has_ip(self, text: str) -> bool:
        try:
            return str(ipaddress.ip_address(text)) in self.ips
        except ValueError:
            return False


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif value is not None:
        yield value


# --- what to do: policy, not model output ----------------------------------------------


def policy_actions(sheet: Mapping[str, Any], playbook: Mapping[str, Sequence[str]]) -> list[str]:
    """The recommended actions for an incident, from its kind and validated facts only.

    ``playbook`` maps incident kinds to their rule's actions (``{block}`` stands for
    blocking the incident's addresses; :func:`soc.detect.rules.actions_by_kind`).
    Attacker-written values (user names, paths) never appear: a hostile user name
    cannot change what the analyst is told to do.
    """
    incident = sheet.get("incident", {})
    kind = incident.get("kind", "")
    sources = [str(ip) for ip in sheet.get("source_addresses", [])]
    many = len(sources) > 3 or sheet.get("source_addresses_not_listed")
    who = "the source addresses listed" if many or not sources else ", ".join(sources)
    block = f"Block {who} at the firewall (fail2ban or ufw) for at least 24 hours."
    actions = [a.replace("{block}", block) for a in playbook.get(kind, ("{block}",))]
    if incident.get("still_active"):
        actions.append("Keep watching: the campaign was still active when this was written.")
    return actions


def batch_policy_actions(
    sheet: Mapping[str, Any], playbook: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The recommended actions for a batch of incidents, from its kinds and counts only.

    (A batch's actions sum up its kinds; ``playbook``, the per-kind actions, is not used.)
    """
    batch = sheet.get("batch", {})
    kinds = set(sheet.get("by_kind", {}))
    listed = len(sheet.get("most_active_sources", []))
    actions = [
        f"Block the {listed} most active source addresses listed at the firewall (fail2ban "
        "or ufw) for at least 24 hours; the rest made too few attempts to matter alone."
    ]
    if kinds & {BRUTE_FORCE, SLOW_BRUTE_FORCE, PASSWORD_SPRAY, DISTRIBUTED_BRUTE_FORCE}:
        actions.append(
            "Disable SSH password authentication (PasswordAuthentication no) or require MFA: "
            "background password guessing then cannot succeed."
        )
    if sheet.get("busiest_networks"):
        actions.append(
            "Consider blocking the busiest networks listed as a whole if they never carry "
            "legitimate traffic to this server."
        )
    if WEB_SCAN in kinds:
        actions.append(
            "Confirm that none of the probed paths exist or expose files (backups, .env, "
            "admin panels) on this server."
        )
    if WEB_AUTH_BRUTE_FORCE in kinds:
        actions.append("Rate-limit the protected locations (nginx limit_req).")
    if PORT_SCAN in kinds:
        actions.append("Confirm that only intended services listen on the scanned ports.")
    actions.append(
        f"No incident of this batch reached {batch.get('below_severity', 'high')} severity; "
        "any that does gets a report of its own."
    )
    return actions


# --- the markdown --------------------------------------------------------------------


def escape_markdown(text: str) -> str:
    """Model- or attacker-written text made to render as exactly that text in markdown.

    :func:`soc.text.markdown_text`: punctuation escaped; URLs, addresses and
    shortcodes (which Streamlit's Markdown acts on even escaped) as code spans;
    invisible characters shown as ``⟨U+hex⟩``. The writer's line breaks stay.
    """
    return markdown_text(text)


def render_markdown(
    fields: Mapping[str, Any], sheet: Mapping[str, Any], actions: Sequence[str]
) -> str:
    """The report with its fixed sections; every written text is escaped."""
    incident = sheet.get("incident", {})
    counts = sheet.get("counts", {})
    untrusted = sheet.get("untrusted", {})
    technique = str(incident.get("mitre_technique", ""))
    lines = [
        *_story(fields),
        "## Evidence",
        f"- Kind: {escape_markdown(str(incident.get('kind', '')))}",
        f"- From {incident.get('first_seen', '?')} to {incident.get('last_seen', '?')}",
        f"- Failed attempts: {counts.get('failed_attempts', 0)}; successful logins: "
        f"{counts.get('successful_logins', 0)}; events: {counts.get('events', 0)}",
        f"- Source addresses ({counts.get('source_addresses', 0)}): "
        + (", ".join(f"`{ip}`" for ip in sheet.get("source_addresses", [])) or "none listed"),
    ]
    users = untrusted.get("users", [])
    if users:
        shown = ", ".join(_code(u) for u in users)
        lines.append(
            f"- User names tried ({counts.get('distinct_users_targeted', len(users))}, "
            f"attacker-written): {shown}"
        )
    evidence = untrusted.get("evidence_lines", [])
    if evidence:
        fence = "````"
        lines += ["", "Log lines (attacker-controlled text):", fence, *evidence, fence]
    lines += [
        "",
        "## Assessment and severity",
        f"**Severity:** {incident.get('severity', '?')} · **Confidence:** "
        f"{escape_markdown(str(fields['confidence']))}",
        "",
        escape_markdown(str(fields["assessment"])),
        "",
        "## MITRE ATT&CK",
        f"- {technique} {escape_markdown(str(incident.get('mitre_technique_name', '')))}"
        + (
            f" (https://attack.mitre.org/techniques/{technique.replace('.', '/')}/)"
            if technique
            else ""
        ),
        "",
        *_actions(actions),
    ]
    return "\n".join(lines) + "\n"


def render_batch_markdown(
    fields: Mapping[str, Any], sheet: Mapping[str, Any], actions: Sequence[str]
) -> str:
    """A batch's report with the same fixed sections as an incident's; text escaped."""
    batch = sheet.get("batch", {})
    counts = sheet.get("counts", {})
    untrusted = sheet.get("untrusted", {})
    kinds: Mapping[str, Mapping[str, Any]] = sheet.get("by_kind", {})
    lines = [
        *_story(fields),
        "## Evidence",
        f"- {batch.get('incidents', 0)} incidents below {batch.get('below_severity', '?')} "
        f"severity, from {batch.get('first_seen', '?')} to {batch.get('last_seen', '?')}",
        f"- Failed attempts: {counts.get('failed_attempts', 0)}; successful logins: "
        f"{counts.get('successful_logins', 0)}; events: {counts.get('events', 0)}; source "
        f"addresses: {counts.get('source_addresses', 0)}",
        *(
            f"- {escape_markdown(kind)}: {entry.get('incidents', 0)} incidents, "
            f"{entry.get('failed_attempts', 0)} failed attempts"
            for kind, entry in kinds.items()
        ),
        "- Most active sources: "
        + (
            ", ".join(
                f"`{s.get('address')}` ({s.get('failed_attempts', 0)})"
                for s in sheet.get("most_active_sources", [])
            )
            or "none listed"
        ),
    ]
    networks = sheet.get("busiest_networks", [])
    if networks:
        lines.append(
            "- Busiest networks: "
            + ", ".join(f"`{n.get('network')}` ({n.get('source_addresses')})" for n in networks)
        )
    users = untrusted.get("most_tried_users", [])
    if users:
        lines.append(
            "- User names tried most (attacker-written): "
            + ", ".join(f"{_code(str(u.get('user', '')))} ({u.get('incidents')})" for u in users)
        )
    paths = untrusted.get("most_probed_paths", [])
    if paths:
        lines.append(
            "- Paths probed most (attacker-written): "
            + ", ".join(f"{_code(str(u.get('path', '')))} ({u.get('incidents')})" for u in paths)
        )
    lines += [
        "",
        "## Assessment and severity",
        f"**Severity:** {batch.get('severity', '?')} (the batch's highest) · **Confidence:** "
        f"{escape_markdown(str(fields['confidence']))}",
        "",
        escape_markdown(str(fields["assessment"])),
        "",
        "## MITRE ATT&CK",
        *sorted(
            {
                f"- {entry.get('mitre_technique', '')} "
                f"{escape_markdown(str(entry.get('mitre_technique_name', '')))}"
                for entry in kinds.values()
                if entry.get("mitre_technique")
            }
        ),
        "",
        *_actions(actions),
    ]
    return "\n".join(lines) + "\n"


def _story(fields: Mapping[str, Any]) -> list[str]:
    """The first two sections: the summary and what happened, as the writer put them."""
    return [
        "## Summary",
        escape_markdown(str(fields["summary"])),
        "",
        "## What happened",
        escape_markdown(str(fields["what_happened"])),
        "",
    ]


def _actions(actions: Sequence[str]) -> list[str]:
    """The last section: the policy's recommended actions, numbered."""
    return [
        "## Recommended actions",
        *(f"{i}. {escape_markdown(a)}" for i, a in enumerate(actions, 1)),
    ]


def _code(value: str) -> str:
    # neutralize() already escaped backquotes, so a value cannot close its span.
    return f"`{value}`" if value else "`(empty)`"


__all__ = [
    "CONFIDENCES",
    "MODEL_SCHEMA",
    "Validation",
    "batch_policy_actions",
    "escape_markdown",
    "grounding_errors",
    "policy_actions",
    "render_batch_markdown",
    "render_markdown",
    "sheet_subject",
    "validate_reply",
]
