"""``GRPOConfig`` / ``DPOConfig``: TRL's, with SpectrumConfig's bf16 rule (same keys, same names).

TRL turns bf16 on by default, which fails where bf16 is unsupported (CPU runs); left unset here it
falls back to fp32 there, so one recipe runs on a GPU (bf16) and on a CPU unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import trl

from ..training.config import _bf16_available

__all__ = ["DPOConfig", "GRPOConfig"]


def _resolve_bf16(config: trl.GRPOConfig | trl.DPOConfig) -> None:
    if config.bf16 is None and not config.fp16 and not _bf16_available():
        config.bf16 = False


@dataclass
class GRPOConfig(trl.GRPOConfig):
    """``trl.GRPOConfig`` whose bf16 default falls back to fp32 where bf16 is unsupported."""

    def __post_init__(self) -> None:
        _resolve_bf16(self)
        super().__post_init__()


@dataclass
class DPOConfig(trl.DPOConfig):
    """``trl.DPOConfig`` whose bf16 default falls back to fp32 where bf16 is unsupported."""

    def __post_init__(self) -> None:
        _resolve_bf16(self)
        super().__post_init__()
