"""The evaluation harness: labelled, generated traffic through the real pipeline, scored.

``soc eval`` writes realistic logs (legitimate users, attacks, a public server's
background; :mod:`soc.evaluate.scenarios`), replays each through the engine as
``soc replay`` does (:mod:`soc.evaluate.harness`), counts the model calls the
analyst's real dispatch would make (:mod:`soc.evaluate.calls`), and scores the
incidents against the labels (:mod:`soc.evaluate.score`): precision and recall per
incident kind, legitimate addresses flagged, incidents and model calls per
million lines (:mod:`soc.evaluate.report`).
"""

from soc.evaluate.harness import EvalResult, ScenarioResult, run_evaluation, run_scenario
from soc.evaluate.report import as_dict, render
from soc.evaluate.scenarios import SCENARIOS, SIZES, Scenario, Size

__all__ = [
    "SCENARIOS",
    "SIZES",
    "EvalResult",
    "Scenario",
    "ScenarioResult",
    "Size",
    "as_dict",
    "render",
    "run_evaluation",
    "run_scenario",
]
