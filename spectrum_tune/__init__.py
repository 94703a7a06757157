"""spectrum-tune: post-training that keeps the whole range of valid outputs.

Train with :class:`SpectrumTrainer` (a ``trl.SFTTrainer``) on multi-reference rows and the
spectrum loss; score accuracy and spread with the eval harness (``spectrum-tune eval``).
Heavy modules (torch, trl) load on first use, so ``import spectrum_tune`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from .errors import quiet_library_noise

__version__ = "0.1.0"

_LAZY = {  # public name -> the module (under this package) that defines it
    "SpectrumConfig": "training.config",
    "SpectrumTrainer": "training.trainer",
    "SpectrumCollator": "training.collator",
    "spectrum_loss": "training.losses",
    "spectrum_loss_per_group": "training.losses",
    "spectrum_coefficients": "training.losses",
    "sequence_logps": "training.losses",
    "load_multiref": "training.data",
    "DataError": "training.data",
    "tokenize_group": "training.tokenize",
    "diversity_reward": "rl.rewards",
    "distribution_reward": "rl.rewards",
    "validity_reward": "rl.rewards",
    "divpo_pairs": "rl.divpo",
}

__all__ = ["__version__", *_LAZY]

quiet_library_noise()  # drop the library warnings the toolkit itself triggers (see errors.py)
# transformers >= 5.25 kernelizes every from_pretrained on CUDA with code fetched from the Hub
# (kernels-community/rotary, ...): offline that load raises (seen on an H200, docs/gpu.md), online it
# runs downloaded code and other numerics than the tested paths. Off unless the user asks for it.
os.environ.setdefault("USE_HUB_KERNELS", "NO")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'spectrum_tune' has no attribute {name!r}")
