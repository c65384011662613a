"""Which registered format a log is in, guessed from its first lines.

Each line votes for the format whose shape it has; the format with most votes wins
(ties go to the earlier format in :data:`ORDER`). A sample with no recognisable line
(an empty file that is about to be written) is ``syslog``, the most common auth log.
The guesses are shapes only, so this module never imports the parsers.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any, Final

#: Lines of a sample that are looked at.
SAMPLE_LINES: Final = 200
#: What an undecidable sample is taken to be.
DEFAULT_FORMAT: Final = "syslog"
#: Tie-break order.
ORDER: Final = ("syslog", "web_access", "web_error", "journal_json", "wazuh_json", "ecs_json")

_SYSLOG_RE: Final = re.compile(
    r"(?:<\d{1,3}>)?(?:1 )?(?:[A-Z][a-z]{2} +\d{1,2} (?:\d{4} )?\d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)? ",
    re.ASCII,
)
_ACCESS_RE: Final = re.compile(
    r"\S+ (?:\S+ )?\S+ .*?\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] \"", re.ASCII
)
_NGINX_ERROR_RE: Final = re.compile(
    r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:emerg|alert|crit|error|warn|notice|info|debug)\] ",
    re.ASCII,
)
_APACHE_ERROR_RE: Final = re.compile(
    r"\[(?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)? \d{4}\] \[", re.ASCII
)


def _json_format(text: str) -> str | None:
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if "__REALTIME_TIMESTAMP" in doc or (
        "MESSAGE" in doc and ("SYSLOG_IDENTIFIER" in doc or "_COMM" in doc or "_PID" in doc)
    ):
        return "journal_json"
    rule = doc.get("rule")
    # ECS has rule.* fields and Filebeat adds agent.* too; Wazuh files have no @timestamp.
    if (
        isinstance(rule, dict)
        and "@timestamp" not in doc
        and ("agent" in doc or "full_log" in doc or "decoder" in doc)
    ):
        return "wazuh_json"
    if "@timestamp" in doc:
        return "ecs_json"
    return None


def line_format(line: str) -> str | None:
    """The format one line looks like, or None."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        return _json_format(text)
    if _SYSLOG_RE.match(text) is not None or text.startswith("-- "):
        return "syslog"
    if _NGINX_ERROR_RE.match(text) is not None or _APACHE_ERROR_RE.match(text) is not None:
        return "web_error"
    if _ACCESS_RE.match(text) is not None:
        return "web_access"
    return None


def detect_format(sample: Sequence[str], known: Collection[str] | None = None) -> str:
    """The format most lines of ``sample`` look like (``syslog`` when none does).

    ``known`` limits the answer to registered formats (default: every format here).
    """
    votes: Counter[str] = Counter()
    for line in sample[:SAMPLE_LINES]:
        name = line_format(line)
        if name is not None and (known is None or name in known):
            votes[name] += 1
    if not votes:
        return DEFAULT_FORMAT
    return max(votes, key=lambda name: (votes[name], -ORDER.index(name)))


__all__ = ["DEFAULT_FORMAT", "ORDER", "SAMPLE_LINES", "detect_format", "line_format"]
