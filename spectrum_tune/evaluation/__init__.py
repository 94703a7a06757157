"""The eval harness: task files -> sample/score/steer runs -> results.json, report.md, plots.

Modules: :mod:`.tasks` (task files and suites), :mod:`.score` (exact log-probs),
:mod:`.sample` (batched sampling and sample metrics), :mod:`.steer` (in-context NLL),
:mod:`.runner` (runs tasks, writes results.json), :mod:`.report` (report.md, plots),
:mod:`.render` (tables and figures every report uses), :mod:`.stops` (where a sample ends),
:mod:`.validators` (int_range / regex / list-file validators), :mod:`.published` (the published
Spectrum Tuning metrics, ``--published``), :mod:`.extract` (answer extraction),
:mod:`.verbalized` (the Verbalized Sampling arm), :mod:`.benchmarks` (Hub benchmarks),
:mod:`.metrics.novelty` (NoveltyBench equivalence, distinct, utility),
and :mod:`.metrics`. ``compare`` is :mod:`spectrum_tune.analysis.compare`; the commands are in
:mod:`spectrum_tune.cli`. Heavy imports happen on use.
"""

from __future__ import annotations

from .tasks import Item, Task, Validator, load_task, resolve_tasks

__all__ = ["Item", "Task", "Validator", "load_task", "resolve_tasks"]
