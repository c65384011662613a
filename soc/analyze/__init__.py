"""The AI analyst: one grounded report per incident, from Gemini, a local model or code.

:class:`~soc.analyze.analyst.Analyst` runs the configured chain of providers
(:mod:`soc.analyze.gemini`, :mod:`soc.analyze.openai_compatible`,
:mod:`soc.analyze.local`, the last served by :mod:`soc.modelserver`), validates each reply
(:mod:`soc.analyze.report`) against the incident's fact sheet
(:mod:`soc.analyze.facts`), and falls back to the offline analyst
(:mod:`soc.analyze.offline`), which always answers.
"""

from __future__ import annotations

from soc.analyze.base import (
    PROVIDER_TYPES,
    PROVIDERS,
    AnalyzeConfig,
    Completion,
    Provider,
    ProviderError,
)

__all__ = [
    "PROVIDERS",
    "PROVIDER_TYPES",
    "AnalyzeConfig",
    "Completion",
    "Provider",
    "ProviderError",
]
