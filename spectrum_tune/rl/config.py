"""``GRPOConfig`` / ``DPOConfig``: TRL's, with SpectrumConfig's machine defaults (same keys, same names).

TRL turns bf16 on by default, which fails where bf16 is unsupported (CPU runs); left unset here it
falls back to fp32 there, so one recipe runs on a GPU (bf16) and on a CPU unchanged, without
pinned-memory or checkpointing-rename warnings
(:func:`~spectrum_tune.training.config.apply_machine_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

import trl

from ..training.config import apply_machine_defaults

__all__ = ["DPOConfig", "GRPOConfig"]


@dataclass
class GRPOConfig(trl.GRPOConfig):
    """``trl.GRPOConfig`` with SpectrumConfig's machine defaults (bf16 only where supported)."""

    def __post_init__(self) -> None:
        apply_machine_defaults(self)
        super().__post_init__()


@dataclass
class DPOConfig(trl.DPOConfig):
    """``trl.DPOConfig`` with SpectrumConfig's machine defaults (bf16 only where supported)."""

    def __post_init__(self) -> None:
        apply_machine_defaults(self)
        super().__post_init__()
