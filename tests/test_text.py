"""soc.text: attacker- and model-written strings become Markdown that is only text.

Examples pin the technique (code spans, the ``:material/`` split, ``⟨U+hex⟩``
markers, caps); hypothesis properties check, for any input, that the output parses
(with markdown-it, CommonMark plus GFM tables and strikethrough) to nothing but
text and code, that the text shown is exactly the input, and that nothing
Streamlit acts on in decoded text (a URL, an address, a shortcode) is left outside
a code span. ``tests/app/test_hostile_text.py`` checks the same in Chromium.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from soc import text
from soc.analyze.report import escape_markdown
from soc.samples import SCREEN_USERS

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])

#: Pieces that mean something to Markdown, HTML, Streamlit or a terminal.
PIECES = [
    "https://",
    "http://",
    "www.",
    "WWW.",
    "mailto:",
    "@",
    ":",
    "::",
    ":::",
    "smile",
    "100",
    "09",
    "material/",
    "material_",
    "streamlit",
    "red[",
    "abbr{",
    "$",
    "$$",
    "`",
    "``",
    "```",
    "~~~",
    "[",
    "]",
    "(",
    ")",
    "![",
    "](",
    "<",
    ">",
    "<img src=x>",
    "&",
    "&#x202E;",
    "&#58;",
    "&amp;",
    "#",
    "## ",
    "*",
    "**",
    "_",
    "~",
    "|",
    "\\",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "-",
    "--",
    "->",
    "<-",
    "+",
    "=",
    "1.",
    "2)",
    ".",
    "{",
    "}",
    "^",
    "evil.example",
    "x",
    "é",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u00ad",
    "\u061c",
    "\x1b",
    "\x00",
    "\u2028",
    "\u3164",
]
hostile = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)
anything = st.text(max_size=60)
strings = st.one_of(hostile, anything, st.sampled_from(SCREEN_USERS))


# --- helpers: what markdown-it makes of it -----------------------------------------
def tokens(markdown: str) -> list[Token]:
    """Every token, inline children included."""
    out: list[Token] = []
    for token in MD.parse(markdown):
        out.append(token)
        out.extend(token.children or [])
    return out


def shown(markdown: str) -> str:
    """The text a reader sees: the rendered HTML without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", MD.render(markdown)))


def squash(value: str) -> str:
    """White space as a browser lays out a paragraph: runs become one space."""
    return re.sub(r"\s+", " ", value).strip()


def outside_code(markdown: str) -> list[str]:
    """The decoded text nodes (what Streamlit's text plugins see): runs of text tokens
    and soft breaks, as remark joins them into one text node."""
    nodes: list[str] = []
    for block in MD.parse(markdown):
        current: list[str] = []
        for token in block.children or []:
            if token.type == "text":
                current.append(token.content)
            elif token.type == "softbreak":
                current.append("\n")
            else:
                nodes.append("".join(current))
                current = []
        nodes.append("".join(current))
    return [n for n in nodes if n]


def _no_invisible(value: str) -> bool:
    return not any(text.is_invisible(ch) for ch in value if ch not in "\n\t")


# --- characters ----------------------------------------------------------------------
def test_invisible_characters_are_shown_by_code_point() -> None:
    assert text.visible("user\u202etxt.exe") == "user⟨U+202E⟩txt.exe"
    assert text.visible("ad\u200bmin\u00ad\ufeff") == "ad⟨U+200B⟩min⟨U+00AD⟩⟨U+FEFF⟩"
    assert text.visible("a\tb\nc\x1b\r") == "a\tb\nc⟨U+001B⟩⟨U+000D⟩"
    assert text.visible("\u3164\U000e0041") == "⟨U+3164⟩⟨U+E0041⟩"  # a blank letter, a tag
    for ch in text.BIDI_CONTROLS:
        assert text.is_invisible(ch), f"U+{ord(ch):04X}"
    assert not text.is_invisible("é") and not text.is_invisible(" ")


def test_cap_cuts_with_an_ellipsis_and_never_splits_a_marker() -> None:
    assert text.cap("abcdef", 4) == "abc…"
    assert text.cap("abc", 3) == "abc"
    assert text.cap(text.visible("ab\u202ecd"), 8) == "ab…"  # the marker does not fit
    assert text.cap(text.visible("ab\u202ecd"), 11) == "ab⟨U+202E⟩…"
    assert text.cap("abc", 0) == ""


def test_plain_is_one_visible_line() -> None:
    assert text.plain("a\r\nb\tc\u202e", 100) == "a b c⟨U+202E⟩"
    assert text.plain("x" * 300, 10) == "x" * 9 + "…"


def test_plot_labels_are_entities_for_what_plotly_renders() -> None:
    assert text.plot_label('<a href="x">$x$</a> & \u202e', 60) == (
        "&lt;a href=&quot;x&quot;&gt;&#36;x&#36;&lt;/a&gt; &amp; ⟨U+202E⟩"
    )
    assert text.plot_label("a" * 50, 24) == "a" * 23 + "…"


# --- literal Markdown ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "markdown"),
    [
        ("https://evil.example/x", "`https://evil.example/x`"),
        ("a`b``c", "```a`b``c```"),
        ("`x`", "`` `x` ``"),
        (" y ", "`  y  `"),
        (" y", "` y`"),
        ("x:material/home:y", "`x`\\:`material/home:y`"),
        (":material/home:", "\\:`material/home:`"),
        ("user\u202etxt.exe", "`user⟨U+202E⟩txt.exe`"),
        ("line\nbreak", "`line break`"),
        ("", ""),
    ],
)
def test_literal_markdown_is_a_code_span(value: str, markdown: str) -> None:
    assert text.literal_markdown(value) == markdown


def test_literal_markdown_is_capped() -> None:
    assert text.literal_markdown("x" * 500, 20) == "`" + "x" * 19 + "…`"


@settings(max_examples=400, deadline=None)
@given(strings)
def test_literal_markdown_renders_as_exactly_the_text(value: str) -> None:
    markdown = text.literal_markdown(value, 10_000)
    assert "\n" not in markdown and "\r" not in markdown
    assert _no_invisible(markdown)
    kinds = {t.type for t in tokens(markdown)}
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "code_inline", "text"}, kinds
    # The only text outside code: the colon of a split ``:material/``.
    assert all(t == ":" for t in outside_code(markdown)), outside_code(markdown)
    assert ":material/" not in markdown  # Streamlit rewrites it in the source
    expected = text.plain(value, 10_000)
    assert shown(markdown).strip("\n") == expected or not expected.strip(" ")


# --- prose ---------------------------------------------------------------------------
def test_risky_words() -> None:
    for word in (
        "https://evil.example/x",
        "www.evil.example",
        "WWW.EVIL.EXAMPLE",
        "x@evil.example",
        "mailto:x",
        ":smile:",
        ":100:",
        ":+1:",
        "a:b:c",
        ":material/home:",
        ":material_home:",
        "--",
        "->",
    ):
        assert text.risky_word(word), word
    for word in ("09:00:05", "2025-11-21T09:00:05Z", "203.0.113.9", "brute-force", "a:b"):
        assert not text.risky_word(word), word


def test_prose_escapes_what_starts_markdown_and_spans_what_streamlit_links() -> None:
    assert text.markdown_text("A brute-force attack from 203.0.113.9, made 57 attempts.") == (
        "A brute-force attack from 203.0.113.9, made 57 attempts."
    )
    assert text.markdown_text("see https://evil.example/x :smile: $x^2$ :red[a] *b* <i>") == (
        "see `https://evil.example/x` `:smile:` \\$x^2\\$ \\:red\\[a\\] \\*b\\* \\<i\\>"
    )
    assert text.markdown_text("1. step\n  - item\n# head") == "1\\. step\n\\- item\n\\# head"
    assert text.markdown_text("brute_force _x_") == "brute_force \\_x\\_"
    assert text.markdown_text("a\u202eb") == "a⟨U+202E⟩b"


@settings(max_examples=400, deadline=None)
@given(strings)
def test_prose_renders_as_the_text_and_nothing_else(value: str) -> None:
    markdown = text.markdown_text(value)
    assert _no_invisible(markdown)
    kinds = {t.type for t in tokens(markdown)}
    allowed = {"paragraph_open", "paragraph_close", "inline", "code_inline", "text"}
    assert kinds <= allowed | {"softbreak", "hardbreak"}, kinds
    for node in outside_code(markdown):
        assert not any(text.risky_word(w) for w in node.split()), node
    _assert_escaped_outside_code(markdown)
    lines = text.visible(value.replace("\r\n", "\n")).split("\n")
    assert squash(shown(markdown)) == squash("\n".join(line.lstrip(" \t") for line in lines))


def _assert_escaped_outside_code(markdown: str) -> None:
    """``$``, ``&`` and a colon before a letter are escaped wherever they are not code
    (KaTeX, entities and directives are Streamlit's, which markdown-it does not know)."""
    source = _unescaped_outside_code(markdown)
    assert "$" not in source and "&" not in source, markdown
    assert not re.search(r":[A-Za-z:]", source), markdown


def _unescaped_outside_code(markdown: str) -> str:
    """The source's characters that are neither escaped nor in a code span (CommonMark:
    a backslash takes the character after it; a backtick run opens a span closed by
    the next run of the same length)."""
    out: list[str] = []
    i = 0
    while i < len(markdown):
        ch = markdown[i]
        if ch == "\\":
            out.append("\x00")  # an escaped character: it starts nothing
            i += 2
            continue
        if ch == "`":
            run = len(markdown[i:]) - len(markdown[i:].lstrip("`"))
            close = re.compile(f"(?<!`)`{{{run}}}(?!`)").search(markdown, i + run)
            i = close.end() if close else i + run
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def test_escape_markdown_of_reports_is_markdown_text() -> None:
    value = "mail x@evil.example :smile: [click](https://evil.example)"
    assert escape_markdown(value) == text.markdown_text(value)


# --- stored reports ------------------------------------------------------------------
OLD_REPORT = """## Summary
A brute\\-force attack; see https://evil.example/x and :smile: $x^2$ &#x202E; ![i](https://e.x/i.png)

**Severity:** high · **Confidence:** low

- User names tried: `root`, `admin from 192.0.2.254`, `:material/home:`, `user\u202etxt.exe`
- T1110 Brute Force (https://attack.mitre.org/techniques/T1110/001/)

````
Nov 21 06:40:32 web01 sshd[1]: Invalid user [x](https://evil.example) from 198.51.100.23
````
1. Block 198.51.100.23 at the firewall.
"""


def test_a_stored_report_keeps_its_structure_and_loses_its_links() -> None:
    safe = text.report_markdown(OLD_REPORT)
    rendered = MD.render(safe)
    assert "<h2>Summary</h2>" in rendered
    assert "<strong>Severity:</strong> high" in rendered
    assert "<li>User names tried:" in rendered and "<ol>" in rendered
    assert "<code>(https://attack.mitre.org/techniques/T1110/001/)</code>" in rendered
    assert "<code>https://evil.example/x</code>" in rendered
    assert "<code>:smile:</code>" in rendered
    assert "\\$x^2\\$" in safe and "\\&#x202E;" in safe
    assert ":<code>material/home:,</code>" in rendered  # the word, its comma too
    assert "user⟨U+202E⟩txt.exe" in rendered
    assert "<img" not in rendered and "<a " not in rendered
    # the fenced log line stays as it was, in its code block
    assert "Invalid user [x](https://evil.example) from" in rendered.split("<pre>")[1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(strings, st.sampled_from(OLD_REPORT.splitlines())), max_size=6))
def test_a_stored_report_never_links_and_is_stable(lines: list[str]) -> None:
    markdown = "\n".join(lines)
    safe = text.report_markdown(markdown)
    assert text.report_markdown(safe) == safe
    assert _no_invisible(safe)
    found: dict[str, Any] = {t.type: t for t in tokens(safe)}
    for kind in ("link_open", "image", "html_inline", "html_block"):
        assert kind not in found, (kind, safe)
    for node in outside_code(safe):
        # (A report keeps emphasis and strikethrough: next to their marks a bare ``--``
        # may still become a dash, which is typography, not a link.)
        words = [w for w in node.split() if w.strip("-<>=~")]
        assert not any(text.risky_word(w) for w in words), (node, safe)
    # Streamlit rewrites ``:material/`` in the source, code blocks too: there it only
    # changes what a code block shows; everywhere else it is split.
    in_blocks = sum(
        (t.info + t.content).count(":material/")
        for t in tokens(safe)
        if t.type in ("fence", "code_block")
    )
    assert safe.count(":material/") == in_blocks, safe
