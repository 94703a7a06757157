"""Hugging Face ``evaluate`` wrappers around :mod:`spectrum_tune.evaluation.metrics`.

Each subfolder ``spectrum_<metric>/spectrum_<metric>.py`` is a local evaluate module, so it
loads offline from its path::

    from spectrum_tune.evaluation.evaluate_modules import load_metric, module_path

    coverage = load_metric("coverage")  # == evaluate.load(module_path("coverage"))
    coverage.compute(predictions=samples, valid_set=valid_answers)

The scripts import ``spectrum_tune``, which must therefore be importable (installed or
on ``sys.path``) wherever they are loaded. Every ``_compute`` ignores unknown keyword
arguments so the modules can be used together in ``evaluate.combine``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # evaluate is slow to import; only load_metric/combine_metrics need it
    import evaluate

__all__ = ["METRIC_NAMES", "combine_metrics", "load_metric", "module_path"]

_ROOT = Path(__file__).resolve().parent
_PREFIX = "spectrum_"

METRIC_NAMES: tuple[str, ...] = (
    "collision",
    "coverage",
    "distinct_n",
    "js_divergence",
    "overtone",
    "self_bleu",
    "vendi",
)


def module_path(name: str) -> str:
    """Local path of a module; ``name`` may omit the ``spectrum_`` prefix."""
    folder = name if name.startswith(_PREFIX) else _PREFIX + name
    path = _ROOT / folder
    if not (path / f"{folder}.py").is_file():
        raise ValueError(f"unknown spectrum metric {name!r}; available: {', '.join(METRIC_NAMES)}")
    return str(path)


def load_metric(name: str, **kwargs: Any) -> evaluate.EvaluationModule:
    """``evaluate.load`` of a bundled module; ``kwargs`` go to ``evaluate.load``."""
    import evaluate

    return evaluate.load(module_path(name), **kwargs)


def combine_metrics(names: list[str], **kwargs: Any) -> evaluate.CombinedEvaluations:
    """``evaluate.combine`` of bundled modules; ``kwargs`` go to ``evaluate.combine``."""
    import evaluate

    return evaluate.combine([load_metric(name) for name in names], **kwargs)
