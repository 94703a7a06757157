"""The GRPO groups a group-level reward scores: runs of ``num_generations`` completions by position
in the trainer's global generation batch, gathered from every process.

How TRL lays a generation batch out (trl 1.16, ``GRPOTrainer`` and ``RLOOTrainer``): the
``RepeatSampler`` yields each sampled row ``num_generations`` times in a row; accelerate hands rank
``r`` the ``r``-th per-device slice of that order; every process calls each reward function on its
own slice only; the rewards are then gathered in rank order, grouped with
``view(-1, num_generations)`` and rank ``r`` keeps positions ``[r * n, (r + 1) * n)``. So a group
is split across processes whenever the per-device batch is not a multiple of ``num_generations``,
and two dataset rows with the same prompt text are two groups, each with its own columns.

:func:`gather_groups` gives a reward what it needs to score whole groups the way TRL groups them:
it learns the group size from the trainer that calls the reward (or from an explicit
``num_generations=G``), gathers the reward's columns from every process (every process calls
every reward function, so the collective is made by all of them), and returns the global batch,
this call's place in it, and the groups to score. Where it cannot know the groups it refuses with
one line; it never guesses them from the prompt text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpectrumError

__all__ = ["GroupBatch", "gather_groups"]


@dataclass(frozen=True)
class GroupBatch:
    """The global generation batch as a group reward sees it (see :func:`gather_groups`)."""

    size: int
    """Completions per group (the trainer's ``num_generations``, or ``num_generations_eval``)."""
    start: int
    """Position of this call's first completion in the global batch."""
    count: int
    """Completions in this call (this process's slice)."""
    columns: dict[str, list[Any]]
    """Each gathered column over the global batch, in rank order (TRL's order)."""

    def groups(self) -> list[range]:
        """Global positions of every group that holds one of this call's completions."""
        first = self.start // self.size * self.size
        return [range(s, s + self.size) for s in range(first, self.start + self.count, self.size)]

    def local(self, values: Sequence[Any]) -> list[Any]:
        """This call's slice of per-completion values over the global batch."""
        return list(values[self.start : self.start + self.count])


def _prompt_key(prompt: Any) -> str:
    """A prompt as text, for checking that a group's completions share one. Objects JSON cannot
    write (an image in a message) count by their type: their ``str`` may hold a memory address,
    which differs between the processes that hold the two halves of one group."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps(prompt, sort_keys=True, default=lambda value: f"<{type(value).__name__}>")


def _calling_trainer(kwargs: dict[str, Any]) -> Any:
    """The trainer whose reward call this is, or None.

    TRL (>= 1.x) passes its ``log_extra`` / ``log_metric`` callbacks to every reward function;
    they are bound methods of the trainer, which holds the group size and the accelerator."""
    for key in ("log_extra", "log_metric"):
        owner = getattr(kwargs.get(key), "__self__", None)
        if owner is not None and hasattr(owner, "num_generations") and hasattr(owner, "accelerator"):
            return owner
    return None


def _layout(name: str, kwargs: dict[str, Any]) -> tuple[int, Any]:
    """(group size, the accelerator to gather over or None for a call of whole groups)."""
    explicit = kwargs.get("num_generations")
    if explicit is not None:
        if isinstance(explicit, bool) or not isinstance(explicit, int) or explicit < 1:
            raise SpectrumError(f"{name}: num_generations must be a positive int, got {explicit!r}")
        return explicit, None
    trainer = _calling_trainer(kwargs)
    if trainer is None:
        raise SpectrumError(
            f"{name} scores GRPO groups and cannot tell them here: call it from trl.GRPOTrainer "
            "(or RLOOTrainer), or pass num_generations=G for a call of whole groups in order"
        )
    size = trainer.num_generations
    if not trainer.model.training:  # TRL's own test for its eval mode (_generate_and_score_completions)
        size = getattr(trainer, "num_generations_eval", None) or size
    return int(size), trainer.accelerator


def gather_groups(
    name: str, prompts: Sequence[Any], kwargs: dict[str, Any], **columns: Sequence[Any]
) -> GroupBatch:
    """The whole groups of a reward call, with ``columns`` (one value per local completion)
    gathered over every process into the global batch (plus ``prompt``, used to check the layout).

    The group size comes from ``num_generations=G`` in ``kwargs`` when given (then the call must
    hold whole groups, in order, and nothing is gathered) or else from the ``GRPOTrainer`` that
    calls the reward (found through the ``log_extra`` callback TRL passes); on several processes
    the columns are gathered with ``accelerate.utils.gather_object``. ``name`` names the reward in
    errors. Raises :class:`SpectrumError` when the size is unknown, the global batch is not whole
    groups, or a group's completions do not share one prompt (the batch is not TRL's layout)."""
    size, accelerator = _layout(name, kwargs)
    local = {"prompt": [_prompt_key(prompt) for prompt in prompts]}
    for key, values in columns.items():
        if len(values) != len(prompts):
            raise SpectrumError(
                f"{name}: column '{key}' has {len(values)} values for {len(prompts)} completions"
            )
        local[key] = list(values)
    if accelerator is None or accelerator.num_processes == 1:
        parts, rank = [local], 0
    else:
        from accelerate.utils import gather_object

        parts, rank = gather_object([local]), accelerator.process_index
    start = sum(len(part["prompt"]) for part in parts[:rank])
    gathered = {key: [value for part in parts for value in part[key]] for key in local}
    total = len(gathered["prompt"])
    if total % size:
        raise SpectrumError(
            f"{name}: the generation batch has {total} completions, "
            f"not whole groups of num_generations={size}"
        )
    # every group is checked, not only this call's: each process sees the same gathered batch, so
    # all of them stop together (one process stopping alone would leave the others in a collective)
    for first in range(0, total, size):
        if len(set(gathered["prompt"][first : first + size])) > 1:
            raise SpectrumError(
                f"{name}: completions {first}-{first + size - 1} of the generation batch do not share "
                f"one prompt, so they are not one group of num_generations={size} (TRL's RepeatSampler order)"
            )
    return GroupBatch(size=size, start=start, count=len(prompts), columns=gathered)
