"""The small evaluation, run once for every test that needs its result."""

from __future__ import annotations

import pytest

from soc.evaluate import EvalResult, run_evaluation


@pytest.fixture(scope="session")
def small_eval() -> EvalResult:
    """``soc eval --size small --seed 7``'s result (about 15 seconds)."""
    return run_evaluation("small", 7)
