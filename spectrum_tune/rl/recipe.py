"""GRPO and DPO recipes: one YAML of script keys + ``GRPOConfig``/``DPOConfig`` + ``ModelConfig``
keys, parsed the way ``spectrum-tune train`` parses its recipes (unknown keys named and refused).

Reward functions are named in ``reward_funcs`` the way TRL's own ``trl grpo`` script names them:
a key of :data:`REWARDS` or a dotted import path (``my_lib.rewards.my_reward``).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpectrumError
from ..training.recipe import RunArguments, parse_recipe_args

__all__ = [
    "GRPO_REWARDS",
    "GrpoArguments",
    "dpo_parser",
    "grpo_parser",
    "named_reward",
    "parse_dpo_args",
    "parse_grpo_args",
    "resolve_rewards",
]

GRPO_REWARDS = ("validity", "distribution", "diversity", "popularity", "information_gain")


@dataclass
class GrpoArguments(RunArguments):
    """Script keys of a ``spectrum-tune grpo`` recipe (beside GRPOConfig and ModelConfig)."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["validity"],
        metadata={
            "help": "Reward functions, summed with GRPOConfig.reward_weights: validity, distribution, "
            "diversity, popularity, information_gain (RLP), or a dotted path (my_lib.rewards.my_reward)."
        },
    )
    reward_model_name_or_path: str | None = field(
        default=None, metadata={"help": "A sequence-classification reward model, added to reward_funcs."}
    )
    diversity_quality: str = field(
        default="validity",
        metadata={"help": "Quality factor of the diversity reward: a reward name or dotted path, or 'none'."},
    )
    diversity_equivalence: str = field(
        default="normalized",
        metadata={
            "help": "Equivalence classes of the diversity reward: normalized, exact, novelty, or a "
            "pair-classifier model path."
        },
    )
    popularity_margin: float = field(
        default=0.2, metadata={"help": "How much the popularity reward prefers an answer the group repeats."}
    )
    rlp_baseline: str = field(
        default="ema",
        metadata={
            "help": "information_gain: the no-thought baseline, 'ema' (an EMA copy of the policy) or "
            "'frozen' (the starting weights)."
        },
    )
    rlp_ema_decay: float = field(
        default=0.999, metadata={"help": "information_gain: EMA decay of the baseline per optimizer step."}
    )
    rlp_reduction: str = field(
        default="sum",
        metadata={
            "help": "information_gain: 'sum' (log-prob of the continuation) or 'mean' "
            "(per continuation token)."
        },
    )
    rlp_thought_suffix: str = field(
        default="", metadata={"help": "information_gain: text between the thought and the continuation."}
    )
    rlp_context_words: int = field(
        default=32, metadata={"help": "Plain-text datasets (.txt): words of context per row (the prompt)."}
    )
    rlp_continuation_words: int = field(
        default=8, metadata={"help": "Plain-text datasets (.txt): words of continuation per row (rewarded)."}
    )


def grpo_parser():
    from trl import ModelConfig, TrlParser

    from .config import GRPOConfig

    return TrlParser((GrpoArguments, GRPOConfig, ModelConfig), prog="spectrum-tune grpo")


def dpo_parser():
    from trl import ModelConfig, TrlParser

    from .config import DPOConfig

    return TrlParser((RunArguments, DPOConfig, ModelConfig), prog="spectrum-tune dpo")


def parse_grpo_args(argv: list[str]) -> tuple[Any, Any, Any]:
    """``--config recipe.yaml`` plus overrides -> (GrpoArguments, GRPOConfig, ModelConfig)."""
    return parse_recipe_args(argv, grpo_parser(), "grpo")


def parse_dpo_args(argv: list[str]) -> tuple[Any, Any, Any]:
    """``--config recipe.yaml`` plus overrides -> (RunArguments, DPOConfig, ModelConfig)."""
    return parse_recipe_args(argv, dpo_parser(), "dpo")


def _import_reward(name: str) -> Any:
    module_name, _, attribute = name.replace(":", ".").rpartition(".")
    sys.path.insert(0, os.getcwd())  # as trl grpo does: a recipe may name a module beside it
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise SpectrumError(f"reward function '{name}' cannot be imported ({error})") from None
    finally:
        sys.path.remove(os.getcwd())


def named_reward(
    name: str,
    *,
    popularity_margin: float = 0.2,
    diversity_quality: str = "validity",
    diversity_equivalence: Any = "normalized",
    information_gain: dict[str, Any] | None = None,
) -> Any:
    """A reward function by recipe name (:data:`GRPO_REWARDS`) or dotted import path."""
    from . import rewards

    if name == "validity":
        return rewards.validity_reward
    if name == "distribution":
        return rewards.distribution_reward
    if name == "popularity":
        return rewards.popularity_reward(margin=popularity_margin)
    if name == "information_gain":  # RLP; its callback attaches the model (rl.train passes it on)
        from .information_gain import InformationGainReward

        return InformationGainReward(**(information_gain or {}))
    if name == "diversity":
        quality = (
            None
            if diversity_quality == "none"
            else named_reward(diversity_quality, popularity_margin=popularity_margin)
        )
        return rewards.diversity_reward(quality=quality, equivalence=diversity_equivalence)
    if "." in name or ":" in name:
        return _import_reward(name)
    raise SpectrumError(
        f"unknown reward function '{name}' (use {', '.join(GRPO_REWARDS)} or a dotted import path)"
    )


def resolve_rewards(args: GrpoArguments) -> list[Any]:
    """The recipe's reward functions, in order (a reward model first, as ``trl grpo`` adds it)."""
    funcs: list[Any] = []
    if args.reward_model_name_or_path:
        funcs.append(args.reward_model_name_or_path)
    funcs += [
        named_reward(
            name,
            popularity_margin=args.popularity_margin,
            diversity_quality=args.diversity_quality,
            diversity_equivalence=args.diversity_equivalence,
            information_gain={
                "baseline": args.rlp_baseline,
                "ema_decay": args.rlp_ema_decay,
                "reduction": args.rlp_reduction,
                "thought_suffix": args.rlp_thought_suffix,
            },
        )
        for name in args.reward_funcs or []
    ]
    if not funcs:
        raise SpectrumError("the recipe needs reward_funcs (e.g. [validity, diversity])")
    return funcs
