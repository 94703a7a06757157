"""SpectrumConfig: TRL's SFTConfig plus the spectrum loss's fields, each with its help text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from trl import SFTConfig

from .gem import GEM_H

__all__ = ["SpectrumConfig", "apply_machine_defaults"]


def apply_machine_defaults(config: Any) -> None:
    """Make one TRL config (SFT, GRPO, DPO, ...) run unchanged on a CPU and a GPU, quietly; call it
    before the config's own ``__post_init__``."""
    if config.bf16 is None and not config.fp16 and not _bf16_available():
        # TRL turns bf16 on by default, which fails on machines without bf16 support (CPU-only
        # runs, older GPUs); the same recipe should run on both, so fall back to fp32 there.
        config.bf16 = False
    if not torch.cuda.is_available():
        config.dataloader_pin_memory = False  # pinning needs an accelerator; torch warns otherwise
    if getattr(config, "activation_checkpointing", False) is None:
        # transformers 5 renamed gradient_checkpointing (TRL's documented key, default True) to
        # activation_checkpointing and warns whenever only the old name is set, which TRL's
        # default always is: take the same value under the new name, without the warning.
        config.activation_checkpointing = config.gradient_checkpointing


def _bf16_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@dataclass
class SpectrumConfig(SFTConfig):
    r"""
    Configuration for [`SpectrumTrainer`]: every field of `trl.SFTConfig` plus the spectrum loss.

    A training row is a *group*: one prompt with K references and target weights, so
    `per_device_train_batch_size` counts groups, not sequences. For a group with sequence
    log-probs `s_k` the loss is `spectrum_alpha * (-logsumexp(s)) + spectrum_beta * KL(w || softmax(s))`;
    rows with a single reference get TRL's token-mean NLL.
    """

    spectrum_alpha: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the mass term -logsumexp(s): pushes probability onto the valid set (accuracy)."
        },
    )
    spectrum_beta: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the match term KL(w || q): spreads the valid mass like the target weights "
            "(spread). alpha = beta = 1 is the weighted multi-reference NLL up to a constant."
        },
    )
    spectrum_chunk_size: int = field(
        default=64,
        metadata={
            "help": "Most sequences forwarded at once. A micro-batch with more sequences is scored in chunks "
            "with the exact two-pass gradient (all log-probs first without activations, then each chunk "
            "recomputed with grad), so memory does not grow with the number of references (except under "
            "DeepSpeed ZeRO-3, which cannot recompute a chunk: chunks keep activations there, said once)."
        },
    )
    spectrum_prefix_sharing: bool = field(
        default=True,
        metadata={
            "help": "Encode each group's prompt once and reuse its key/value cache for all its references "
            "(exact: same loss and gradients as K full sequences; faster when prompts are long). Where it "
            "cannot be exact (PEFT prompt learning, recurrent/hybrid layers, "
            "sequences past a sliding window or longrope's original length) batches run as full sequences "
            "with a one-line notice; see docs/families.md. Works with gradient checkpointing (the prompt "
            "encode and each continuation chunk are then checkpointed whole; not under DeepSpeed ZeRO-3, "
            "which cannot recompute them: full sequences there, said once)."
        },
    )
    spectrum_length_normalize: bool = field(
        default=True,
        metadata={
            "help": "Divide each group's loss by its mean completion length, so it sits on the scale of "
            "TRL's token-mean NLL and can be mixed with plain SFT rows. If False, every row counts as "
            "one item "
            "and the loss is the mean of sequence-level losses."
        },
    )
    spectrum_loss_type: str = field(
        default="nll",
        metadata={
            "help": "Loss of the single-reference rows (K = 1): 'nll' (TRL's token NLL) or 'gem' (GEM, Li "
            "et al. ICLR 2025: an entropy-regularised cross-entropy that keeps output diversity). "
            "Multi-reference groups always get the spectrum loss. Evaluation reports the NLL either way, "
            "as GEM's reference code does.",
            "choices": ["nll", "gem"],
        },
    )
    ddp_broadcast_buffers: bool | None = field(
        default=False,
        metadata={
            "help": "Whether DDP broadcasts buffers (rotary tables and the like) on every forward. Off by "
            "default (transformers leaves it to DDP, which turns it on): each broadcast is a collective, so "
            "ranks whose forwards differ in number would wait on each other forever, and models here keep "
            "no trained buffers. SpectrumTrainer also makes every rank run the same number of forwards."
        },
    )
    gem_beta: float = field(
        default=0.7,
        metadata={
            "help": "GEM's beta in (0, 1]: 1 gives cross-entropy's gradient; lower keeps more diversity "
            "(authors: 0.8-0.9 to fit closely, 0.6-0.7 for more diversity). For spectrum_loss_type='gem'."
        },
    )
    gem_h: str = field(
        default="linear",
        metadata={
            "help": "GEM's weighting function h: 'linear' or 'logsigmoid' (more adaptive; the authors find "
            "the difference usually negligible). Used with spectrum_loss_type='gem'.",
            "choices": list(GEM_H),
        },
    )

    def __post_init__(self):
        apply_machine_defaults(self)
        super().__post_init__()
        if self.spectrum_alpha < 0 or self.spectrum_beta < 0:
            raise ValueError("spectrum_alpha and spectrum_beta must be >= 0")
        if self.spectrum_alpha == 0 and self.spectrum_beta == 0:
            raise ValueError("spectrum_alpha and spectrum_beta cannot both be 0")
        if self.spectrum_chunk_size < 1:
            raise ValueError("spectrum_chunk_size must be >= 1")
        if self.spectrum_loss_type not in ("nll", "gem"):
            raise ValueError(f"spectrum_loss_type must be 'nll' or 'gem', got {self.spectrum_loss_type!r}")
        if not 0 < self.gem_beta <= 1:
            raise ValueError(f"gem_beta must be in (0, 1], got {self.gem_beta}")
        if self.gem_h not in GEM_H:
            raise ValueError(f"gem_h must be one of {GEM_H}, got {self.gem_h!r}")
        # packing / padding_free / loss_type='dft' apply to TRL's single-target rows; a dataset with
        # multi-reference rows is refused under packing when it is prepared (it would split groups).
        if self.spectrum_loss_type == "gem" and self.loss_type == "dft":
            raise ValueError("spectrum_loss_type='gem' and loss_type='dft' both replace the NLL; pick one")
        if self.spectrum_loss_type == "gem" and (self.packing or self.padding_free):
            raise ValueError(
                "spectrum_loss_type='gem' scores padded rows and does not support packing or padding_free; "
                "set packing=False and padding_free=False"
            )
