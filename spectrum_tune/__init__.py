"""spectrum-tune: post-training that keeps the whole range of valid outputs.

Train with :class:`SpectrumTrainer` (a ``trl.SFTTrainer``) on multi-reference rows and the
spectrum loss; score accuracy and spread with the eval harness (``spectrum-tune eval``).
Heavy modules (torch, trl) load on first use, so ``import spectrum_tune`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "SpectrumConfig": "trainer",
    "SpectrumTrainer": "trainer",
    "SpectrumCollator": "trainer",
    "spectrum_loss": "losses",
    "spectrum_loss_per_group": "losses",
    "spectrum_coefficients": "losses",
    "sequence_logps": "losses",
    "load_multiref": "data",
    "DataError": "data",
    "tokenize_group": "data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'spectrum_tune' has no attribute {name!r}")
