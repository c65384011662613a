"""Text is text: how attacker- and model-written strings reach the screen.

User names, URL paths, keys and user agents come from attackers; reports, error
messages and fallback reasons come from models and provider endpoints. None of them
may render as anything but the characters they hold. Every page shows such a string
through one of these functions, never raw:

- :func:`literal_markdown`: a value inside Streamlit Markdown (expander labels,
  headings, captions, ``st.error``/``st.success``/``st.warning``), on one line;
- :func:`markdown_text`: model-written prose inside a report we build (the report's
  own headings, lists and bold labels stay Markdown; see ``soc.analyze.report``);
- :func:`report_markdown`: a stored report, neutralised again when it is shown
  (reports stored by older versions, and text other modules put in);
- :func:`plain`: widgets that show plain text (``st.dataframe`` cells, selectbox
  options) and :func:`visible` for ``st.code`` blocks;
- :func:`plot_label`: Plotly labels and hover text.

**Why code spans.** Backslash escapes are not enough in Streamlit's Markdown:
several of its features work on the *decoded* text of the document, after escapes
are resolved. GFM autolink literals (``https://…``, ``www.…``, ``user@host.tld``,
``mailto:``) are found in text nodes, so ``https\\://evil\\.example`` is still a
link; so are emoji shortcodes (``:smile:``), ``:material/…:`` icons and the
typographic replacements (``--`` → —). Observed in Chromium with Streamlit 1.67: a
backslash-escaped bare URL, ``www.`` name and e-mail address became ``<a>``
elements, an escaped ``:material/home:`` became an icon, and an HTML entity
(``&#x202E;``) decoded to a bidi control. Inside an inline code span nothing of
this happens (a code span is no text node, its content is never decoded) and the
text is shown exactly, so values are wrapped in a code span whose backtick fence is
longer than any backtick run inside. The one exception, found the same way:
Streamlit rewrites ``:material/`` to ``:material_`` in the Markdown *source*,
code spans included, so that colon is written outside the span (``\\:``).
Defanging (``hxxps[:]//``) was not chosen: it changes what the analyst reads and
copies.

Invisible characters are made visible rather than dropped, so a spoof can be seen
for what it is: bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F,
U+061C), zero-width and other format characters (Unicode category Cf: U+200B–U+200D,
U+2060, U+FEFF, U+00AD…), control characters, surrogates, line and paragraph
separators and the blank Hangul fillers are shown as ``⟨U+202E⟩``. Long values are
cut with an ellipsis, so no name can push a label or a chart legend off the screen.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from typing import Final, NamedTuple

#: Bidirectional formatting characters: they reorder what follows them on screen.
BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Characters that draw nothing although they are not format characters.
_BLANK_LETTERS: Final = frozenset("\u034f\u115f\u1160\u3164\uffa0")
#: What stands for a cut.
ELLIPSIS: Final = "…"
#: Characters that end a line (one-line contexts show a space instead).
_LINE_BREAKS: Final = re.compile(r"[\t\n\r\v\f]+")
#: ASCII punctuation: what a CommonMark backslash escape applies to.
_ASCII_PUNCT: Final = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_BACKTICKS: Final = re.compile(r"`+")
_WHITESPACE: Final = re.compile(r"(\s+)")
#: Emoji and Streamlit shortcodes (``:smile:``, ``:streamlit:``, ``:material_home:``).
_SHORTCODE: Final = re.compile(r"(?=:([\w+\-]+):)")
#: Clock times (``09:00:05``) hold ``:00:``, which is no shortcode.
_CLOCK: Final = re.compile(r"\d{1,2}")
#: Streamlit's typographic replacements, between spaces (``a -- b`` → ``a — b``).
_TYPOGRAPHIC: Final = ("<->", "->", "<-", "--", ">=", "<=", "~=")
#: Written by Streamlit as ``:material_`` in the source, code spans included.
_MATERIAL: Final = ":material/"
#: Characters escaped wherever they are in written prose: code spans, emphasis,
#: links and images, HTML and autolinks, entities, math, strikethrough, tables.
_PROSE_SPECIAL: Final = frozenset("\\`*[]<>&$~|")
#: What starts a block at the start of a line: list, heading, quote, setext line.
_LINE_START: Final = frozenset("-+=#>")
_ORDERED: Final = re.compile(r"\d{1,9}[.)]")
#: Characters :func:`report_markdown` escapes in a report's text (its structure keeps
#: ``*``, ``_``, ``#``, ``-`` and list numbers): no link, image, HTML, entity or math
#: can start without one of these (a directive needs a colon before a letter too).
_REPORT_SPECIAL: Final = frozenset("[]<>$&")
_FENCE: Final = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BLOCK_PREFIX: Final = re.compile(r"^[ \t]*(?:(?:#{1,6}|[-+*]|\d{1,9}[.)]|>)[ \t]+)*")


# --- characters ----------------------------------------------------------------------
def is_invisible(ch: str) -> bool:
    """Whether ``ch`` must be shown as its code point: it draws nothing or reorders text.

    Tab and line feed are not (they are white space); every other control character,
    every format character (bidi controls, zero-width characters, soft hyphens, tag
    characters), surrogates, line and paragraph separators and blank letters are.
    """
    if ch in "\t\n":
        return False
    if ch in _BLANK_LETTERS:
        return True
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def marker(ch: str) -> str:
    """How an invisible character is shown: ``⟨U+202E⟩``."""
    return f"⟨U+{ord(ch):04X}⟩"


def visible(text: object) -> str:
    """``text`` with every invisible character shown as ``⟨U+hex⟩`` (for ``st.code``).

    Line feeds and tabs are kept; nothing is cut.
    """
    return "".join(marker(ch) if is_invisible(ch) else ch for ch in str(text))


def cap(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last one an ellipsis if cut.

    A ``⟨U+hex⟩`` marker is never cut in the middle (it goes whole or not at all).
    """
    if limit < 1:
        return ""
    if len(text) <= limit:
        return text
    out: list[str] = []
    used = 0
    for unit in _units(text):
        if used + len(unit) > limit - 1:
            break
        out.append(unit)
        used += len(unit)
    return "".join(out) + ELLIPSIS


def _units(text: str) -> Iterable[str]:
    # Single characters, except a whole ``⟨U+hex⟩`` marker.
    for match in re.finditer(r"⟨U\+[0-9A-F]{4,6}⟩|.", text, re.DOTALL):
        yield match.group(0)


def plain(text: object, limit: int = 256) -> str:
    """``text`` as one line of plain text: invisible characters shown, cut to ``limit``.

    For widgets that show text as text (``st.dataframe`` cells, selectbox options,
    ``st.code`` lines), where only spoofing and length are a concern.
    """
    return cap(visible(_LINE_BREAKS.sub(" ", str(text))), limit)


def plot_label(text: object, limit: int = 48) -> str:
    """``text`` for a Plotly label or hover text: one line, visible, cut, HTML-escaped.

    Plotly renders a few HTML tags (``<a href>``, ``<b>``, ``<br>``) and entities in
    labels, and TeX between ``$`` when MathJax is loaded: ``<``, ``>``, ``&``, quotes
    and ``$`` are written as entities, which Plotly shows as those characters.
    """
    return html.escape(plain(text, limit), quote=True).replace("$", "&#36;")


# --- Markdown ------------------------------------------------------------------------
def code_span(content: str) -> str:
    """``content`` as one inline code span, shown exactly (one line; may be empty).

    The fence is one backtick longer than the longest run inside, and a space pads
    the content when it starts or ends with a backtick or with a space on both sides
    (CommonMark strips one such space). ``:material/`` is split so Streamlit's source
    rewrite cannot reach it: ``x:material/y`` becomes ``` `x`\\:`material/y` ```.
    """
    if not content:
        return ""
    pieces = content.split(_MATERIAL)
    out = _one_span(pieces[0])
    for piece in pieces[1:]:
        out += "\\:" + _one_span("material/" + piece)
    return out


def _one_span(content: str) -> str:
    if not content:
        return ""
    runs = [len(m) for m in _BACKTICKS.findall(content)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = content[0] == "`" or content[-1] == "`"
    if content[0] == " " and content[-1] == " " and content.strip(" "):
        pad = True
    if pad:
        content = f" {content} "
    return f"{fence}{content}{fence}"


def literal_markdown(text: object, limit: int = 256) -> str:
    """Markdown that Streamlit renders as exactly ``text``, on one line.

    No link (bare URLs, ``www.``, ``mailto:``, e-mail addresses, ``[…](…)``, ``<…>``),
    no image, no emoji or icon shortcode, no colour directive, no math, no HTML, no
    emphasis, heading or list: the value is shown in an inline code span. Line breaks
    become spaces, invisible characters ``⟨U+hex⟩``; cut to ``limit`` characters. An
    empty value gives an empty string.
    """
    return code_span(plain(text, limit))


def risky_word(word: str) -> bool:
    """Whether Streamlit would change ``word`` (decoded text, no white space) on screen.

    Its Markdown finds these in the decoded text, so escaping cannot stop them:
    autolink literals (``://``, ``www.``, ``@``, ``mailto:``), emoji and Streamlit
    shortcodes (``:smile:``; clock times such as ``09:00:05`` are not), icons
    (``:material…``) and typographic replacements (``--``, ``->``…).
    """
    lowered = word.lower()
    if "://" in word or "www." in lowered or "@" in word or "mailto:" in lowered:
        return True
    if ":material" in lowered or "xmpp:" in lowered:
        return True
    if any(not _CLOCK.fullmatch(m.group(1)) for m in _SHORTCODE.finditer(word)):
        return True
    return word in _TYPOGRAPHIC


def markdown_text(text: object, limit: int | None = None) -> str:
    """Model- or attacker-written prose as Markdown that renders as exactly that text.

    For text inside a Markdown document we build (a report's summary, assessment,
    actions): every character that could start Markdown is backslash-escaped, so no
    emphasis, heading, list, link, image, HTML, entity, math, strikethrough, table or
    directive can start; each word Streamlit would still change (:func:`risky_word`:
    a URL, an address, a shortcode) is shown as a code span. Line feeds are kept (the
    writer's lines stay lines, without their indentation), invisible characters are
    shown as ``⟨U+hex⟩`` and, with ``limit``, the text is cut.
    """
    value = visible(str(text).replace("\r\n", "\n"))
    if limit is not None:
        value = cap(value, limit)
    lines = []
    for line in value.split("\n"):
        out: list[str] = []
        for part in _WHITESPACE.split(line.lstrip(" \t")):
            if not part or part.isspace():
                out.append(part)
            elif risky_word(part):
                out.append(code_span(part))
            else:
                out.append(_escape_prose(part, line_start=not out))
        lines.append("".join(out))
    return "\n".join(lines)


def _escape_prose(word: str, *, line_start: bool) -> str:
    """One word of prose (no white space, nothing :func:`risky_word` flags), escaped.

    Only what could start Markdown is escaped, so the source stays readable (an
    address, a count, ``brute_force``): see ``_PROSE_SPECIAL``; ``_`` unless between
    letters or digits (GFM never emphasises there); ``:`` before a letter or a colon
    (a directive: ``:red[…]``, ``:abbr{…}``, ``::leaf``); at the start of a line,
    what starts a block (``-``, ``+``, ``=``, ``#``, ``>``, ``1.``).
    """
    out: list[str] = []
    last = len(word) - 1
    ordered = line_start and _ORDERED.fullmatch(word) is not None
    for i, ch in enumerate(word):
        before = word[i - 1] if i else ""
        after = word[i + 1] if i < last else ""
        if (
            ch in _PROSE_SPECIAL
            or (ch == "_" and not (before.isalnum() and after.isalnum()))
            or (ch == ":" and (after.isalpha() or after == ":"))
            or (line_start and i == 0 and ch in _LINE_START)
            or (ordered and i == last)
        ):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def report_markdown(markdown: str, limit: int = 100_000) -> str:
    """A stored Markdown report made safe to show, keeping its structure.

    Reports written by this version are safe already (:func:`markdown_text` escaped
    every written text); this pass catches reports stored by older versions and text
    other modules add (a provider's model name). Headings, list markers, bold labels
    and code spans stay. In the rest of each line, ``[ ] < > $ &``, a colon before a
    letter and stray backticks are escaped (no link, image, HTML, entity, math or
    directive can start) and each word Streamlit would still change
    (:func:`risky_word`) becomes a code span; fenced code blocks stay as they are.
    Invisible characters are shown as ``⟨U+hex⟩`` everywhere; the report is cut to
    ``limit`` characters. (Emphasis and strikethrough stay, so next to their marks a
    bare ``--`` may still be drawn as a dash: typography, never a link.)
    """
    text = cap(visible(markdown.replace("\r\n", "\n")), limit)
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opener = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if _closes(opener, fence, line):
                fence = None
            continue
        if opener and not (opener.group(1)[0] == "`" and "`" in line[opener.end() :]):
            fence = opener.group(1)
            out.append(line)
            continue
        prefix = _BLOCK_PREFIX.match(line)
        head = prefix.group(0) if prefix else ""
        out.append(head + _inline(line[len(head) :]))
    return "\n".join(out)


def _closes(opener: re.Match[str] | None, fence: str, line: str) -> bool:
    """Whether ``line`` closes a fenced block opened by ``fence``."""
    if opener is None or opener.group(1)[0] != fence[0] or len(opener.group(1)) < len(fence):
        return False
    return not line[opener.end() :].strip()


def _inline(line: str) -> str:
    """One line of a report's inline text made inert (see :func:`report_markdown`)."""
    out: list[str] = []
    for word in _words(_atoms(line)):
        if word[0].kind == _SPACE:
            out.append("".join(a.raw for a in word))
            continue
        texts = _texts(word)
        has_code = any(a.kind == _CODE for a in word)
        risky = (
            _MATERIAL in "".join(a.raw for a in word)
            or any(risky_word(t) for t in texts)
            or (has_code and _edges(texts))
        )
        if risky:
            out.append(code_span("".join(a.shown for a in word)))
        else:
            out.append("".join(a.raw if a.kept else "\\" + a.shown for a in word))
    return "".join(out)


_CODE, _CHAR, _SPACE = "code", "char", "space"


class _Atom(NamedTuple):
    """A piece of a line: a code span, a character (maybe escaped) or white space."""

    kind: str
    shown: str  # what it shows
    raw: str  # its source
    kept: bool  # whether ``raw`` can be written as it is (else: escape ``shown``)


def _atoms(line: str) -> list[_Atom]:
    """``line`` as CommonMark reads it: a backslash escapes the ASCII punctuation after
    it (a backtick too), a backtick run opens a code span closed by the next run of the
    same length, and a run with no partner is literal text."""
    atoms: list[_Atom] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in _ASCII_PUNCT:
            atoms.append(_Atom(_CHAR, line[i + 1], line[i : i + 2], True))
            i += 2
        elif ch == "`":
            end = i + len(line[i:]) - len(line[i:].lstrip("`"))
            length = end - i
            close = _closing_run(line, end, length)
            if close is None:
                atoms.extend(_Atom(_CHAR, "`", "`", False) for _ in range(length))
                i = end
                continue
            inner = line[end:close]
            if inner[:1] == inner[-1:] == " " and inner.strip(" "):
                inner = inner[1:-1]
            atoms.append(_Atom(_CODE, inner, line[i : close + length], True))
            i = close + length
        elif ch.isspace():
            atoms.append(_Atom(_SPACE, ch, ch, True))
            i += 1
        else:
            after = line[i + 1] if i + 1 < n else ""
            directive = ch == ":" and (after.isalpha() or after == ":")
            atoms.append(_Atom(_CHAR, ch, ch, ch not in _REPORT_SPECIAL and not directive))
            i += 1
    return atoms


def _words(atoms: list[_Atom]) -> list[list[_Atom]]:
    """Runs of white space and runs of everything else (code spans count as a word)."""
    words: list[list[_Atom]] = []
    for atom in atoms:
        if words and (words[-1][0].kind == _SPACE) == (atom.kind == _SPACE):
            words[-1].append(atom)
        else:
            words.append([atom])
    return words


def _texts(word: list[_Atom]) -> list[str]:
    """The decoded text nodes of a word (the text between its code spans)."""
    texts = [""]
    for atom in word:
        if atom.kind == _CODE:
            texts.append("")
        else:
            texts[-1] += atom.shown
    return [t for t in texts if t]


def _edges(texts: list[str]) -> bool:
    # A typographic sequence at the edge of a text node (next to a code span).
    return any(t.startswith(_TYPOGRAPHIC) or t.endswith(_TYPOGRAPHIC) for t in texts)


def _closing_run(text: str, start: int, length: int) -> int | None:
    for match in _BACKTICKS.finditer(text, start):
        if len(match.group(0)) == length:
            return match.start()
    return None


__all__ = [
    "BIDI_CONTROLS",
    "ELLIPSIS",
    "cap",
    "code_span",
    "is_invisible",
    "literal_markdown",
    "markdown_text",
    "marker",
    "plain",
    "plot_label",
    "report_markdown",
    "risky_word",
    "visible",
]
