"""The ``grpo`` and ``dpo`` jobs: recipe -> model + data -> trl.GRPOTrainer / trl.DPOTrainer -> run dir.

The run directory matches ``spectrum-tune train``'s: the adapter (or model), the resolved recipe
(``spectrum_recipe.yaml``, re-runnable with ``--config``) and ``training_summary.json``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpectrumError
from ..io import write_json_atomic, write_text_atomic
from ..training.preemption import preemptible, resolve_resume
from ..training.recipe import resolved_recipe
from ..training.train import RECIPE_FILE, SUMMARY_FILE, check_output_dir, load_recipe_model
from .data import load_pair_rows, load_prompt_rows

__all__ = ["run_dpo", "run_grpo"]


def _run(
    kind: str, run_args: Any, config: Any, model_args: Any, build: Any, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    from trl import get_peft_config

    if not run_args.dataset_name:
        raise SpectrumError("the recipe needs dataset_name (a data file or Hub dataset)")
    # a bad checkpoint is refused here, before the model loads ("false" is not resuming)
    resuming = resolve_resume(config.resume_from_checkpoint, config.output_dir) is not None
    check_output_dir(config.output_dir, run_args.overwrite_output_dir, resuming)
    model, tokenizer = load_recipe_model(model_args, config)
    # the model is built here (TRL must not apply model_init_kwargs again); the token stays out of files
    recipe_init_kwargs, config.model_init_kwargs = config.model_init_kwargs, None
    config.hub_token = None
    started = time.perf_counter()
    trainer = build(model, tokenizer, get_peft_config(model_args))
    result = trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    trainer.save_model(config.output_dir)
    elapsed = time.perf_counter() - started
    config.model_init_kwargs = recipe_init_kwargs
    main_process = trainer.is_world_process_zero()
    output_dir = Path(config.output_dir)
    if main_process:
        recipe = resolved_recipe(run_args, config, model_args)
        write_text_atomic(output_dir / RECIPE_FILE, yaml.safe_dump(recipe, sort_keys=True))
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    summary = {
        "trainer": kind,
        "model": model_args.model_name_or_path,
        "dataset": run_args.dataset_name,
        "rows": len(trainer.train_dataset),
        "global_steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": logged[0]["loss"] if logged else None,
        "last_logged_loss": logged[-1]["loss"] if logged else None,
        "wall_seconds": round(elapsed, 2),
        "seconds_per_step": round(elapsed / max(trainer.state.global_step, 1), 4),
        "peft": bool(model_args.use_peft),
        "machine": platform.platform(),
        **(extra or {}),
        "log_history": trainer.state.log_history,
    }
    rewards_logged = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    if rewards_logged:  # GRPO logs the mean reward of each logged step
        summary["first_logged_reward"], summary["last_logged_reward"] = rewards_logged[0], rewards_logged[-1]
    if main_process:
        write_json_atomic(output_dir / SUMMARY_FILE, summary)
    summary["main_process"] = main_process
    return summary


def run_grpo(
    run_args: Any, config: Any, model_args: Any, reward_funcs: list[Any] | None = None
) -> dict[str, Any]:
    """GRPO as the recipe says (``reward_funcs`` given here replace the recipe's); returns the summary."""
    from trl import GRPOTrainer

    from .recipe import resolve_rewards

    rewards = reward_funcs if reward_funcs is not None else resolve_rewards(run_args)
    if str(run_args.dataset_name).endswith(".txt"):  # plain text: RLP rows {prompt, continuation}
        from datasets import Dataset

        from .information_gain import text_rows

        dataset = Dataset.from_list(
            text_rows(
                run_args.dataset_name,
                getattr(run_args, "rlp_context_words", 32),
                getattr(run_args, "rlp_continuation_words", 8),
            )
        )
    else:
        dataset = load_prompt_rows(run_args.dataset_name, run_args.dataset_train_split)
    # rewards that need the trainer's model (information gain) bring a callback that attaches it
    callbacks = [func.callback for func in rewards if hasattr(func, "callback")]

    def build(model: Any, tokenizer: Any, peft_config: Any) -> Any:
        return preemptible(GRPOTrainer)(
            model=model,
            reward_funcs=rewards,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks or None,
        )

    names = [getattr(func, "__name__", str(func)) for func in rewards]
    return _run("grpo", run_args, config, model_args, build, extra={"reward_funcs": names})


def run_dpo(run_args: Any, config: Any, model_args: Any) -> dict[str, Any]:
    """DPO on a preference-pair file (e.g. ``spectrum-tune divpo-pairs`` output); returns the summary."""
    from trl import DPOTrainer

    dataset = load_pair_rows(run_args.dataset_name, run_args.dataset_train_split)

    def build(model: Any, tokenizer: Any, peft_config: Any) -> Any:
        return preemptible(DPOTrainer)(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )

    return _run("dpo", run_args, config, model_args, build)
