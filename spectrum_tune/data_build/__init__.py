"""Building multi-reference rows from what a user has (``spectrum-tune data-build``).

Prompts (or one-answer SFT rows) -> samples from one or more teachers -> the eval's extraction and
equivalence classes -> validity (validator, judge model, agreement) -> weights (counts, the
teachers' exact probabilities, uniform) -> rows with provenance, which ``train`` reads unchanged.
This room sits above ``evaluation`` (it reuses the eval's sampler, scorer, extraction and validity
rules) and ``analysis`` (Prismatic selection reuses the data report's gradient features).
"""

from __future__ import annotations

from .build import build_data
from .config import DataBuildConfig, TeacherSpec

__all__ = ["DataBuildConfig", "TeacherSpec", "build_data"]
