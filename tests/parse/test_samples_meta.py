"""Every pattern of every registered format has an annotated sample line, and back."""

from __future__ import annotations

from soc.parse import FORMATS, parser_class
from tests.parse.samples_format import load_sample, sample_files


def _patterns_by_format() -> dict[str, tuple[str, ...]]:
    # Through the registry only: each class is imported by its "module:Class" entry.
    found: dict[str, tuple[str, ...]] = {}
    for name in FORMATS:
        patterns = getattr(parser_class(name), "patterns", None)
        assert isinstance(patterns, tuple) and patterns, f"{name}: no patterns tuple"
        assert len(set(patterns)) == len(patterns), f"{name}: duplicate pattern names"
        found[name] = patterns
    return found


def test_every_pattern_has_a_sample_line() -> None:
    annotated = set().union(*(load_sample(path).patterns for path in sample_files()))
    missing = sorted(
        f"{name}: {pattern}"
        for name, patterns in _patterns_by_format().items()
        for pattern in patterns
        if pattern not in annotated
    )
    assert missing == [], "patterns without a sample line:\n" + "\n".join(missing)


def test_every_annotation_names_a_pattern_of_its_format() -> None:
    patterns = _patterns_by_format()
    unknown = []
    for path in sample_files():
        sample = load_sample(path)
        assert sample.format in FORMATS, f"{path.name}: unknown format {sample.format!r}"
        for pattern in sorted(sample.patterns - set(patterns[sample.format])):
            unknown.append(f"{path.name}: {pattern} (not a {sample.format} pattern)")
    assert unknown == [], "\n".join(unknown)
