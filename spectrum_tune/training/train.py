"""The ``train`` job: recipe → model + data → SpectrumTrainer → adapter, recipe copy, summary."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpectrumError
from ..io import write_json_atomic, write_text_atomic

__all__ = ["check_output_dir", "load_recipe_model", "run_training"]

RECIPE_FILE = "spectrum_recipe.yaml"
SUMMARY_FILE = "training_summary.json"
_RUN_MARKERS = (RECIPE_FILE, SUMMARY_FILE, "adapter_config.json", "config.json", "trainer_state.json")


def check_output_dir(output_dir: str, overwrite: bool, resuming: bool) -> None:
    """Refuse to write into a directory that already holds another run."""
    path = Path(output_dir)
    if not path.exists() or overwrite or resuming:
        return
    if not path.is_dir():
        raise SpectrumError(f"output_dir '{output_dir}' is a file")
    found = [name for name in _RUN_MARKERS if (path / name).exists()]
    found += sorted(p.name for p in path.glob("checkpoint-*"))[:1]
    if found:
        raise SpectrumError(
            f"output_dir '{output_dir}' already holds a run ({found[0]}); choose another directory, "
            "pass --overwrite_output_dir, or --resume_from_checkpoint to continue it"
        )


def _drop_library_card(output_dir: Path) -> None:
    """Remove the README.md PEFT writes on save: it records the base model's local path, and
    ``spectrum-tune push`` writes the run's real model card."""
    card = output_dir / "README.md"
    if card.is_file() and "library_name: peft" in card.read_text(encoding="utf-8", errors="replace"):
        card.unlink()


def _split_paths(name: str) -> str | list[str]:
    parts = [part.strip() for part in name.split(",") if part.strip()]
    return parts if len(parts) > 1 else parts[0]


def load_recipe_model(model_args: Any, config: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` as a recipe describes them: ``model_name_or_path`` (any name
    :func:`~spectrum_tune.models.load_model` takes), ``model_init_kwargs`` (``gguf_file`` included),
    ``dtype``, the 4-/8-bit quantization keys of TRL's ``ModelConfig`` and ``trust_remote_code``
    (as TRL's trainers: the config's value unless ``model_init_kwargs`` sets one; model and
    tokenizer alike)."""
    from trl import get_quantization_config

    from ..models import load_model, load_tokenizer

    if not model_args.model_name_or_path:
        raise SpectrumError("the recipe needs model_name_or_path")
    init_kwargs = dict(config.model_init_kwargs or {})
    gguf_file = init_kwargs.pop("gguf_file", None)
    if model_args.dtype not in (None, "auto"):
        init_kwargs.setdefault("dtype", model_args.dtype)
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        init_kwargs["quantization_config"] = quantization
    init_kwargs.setdefault("trust_remote_code", bool(getattr(config, "trust_remote_code", False)))
    shared = {key: init_kwargs[key] for key in ("revision", "trust_remote_code") if key in init_kwargs}
    tokenizer = load_tokenizer(model_args.model_name_or_path, gguf_file=gguf_file, **shared)
    return load_model(model_args.model_name_or_path, gguf_file=gguf_file, **init_kwargs), tokenizer


def run_training(run_args: Any, config: Any, model_args: Any) -> dict[str, Any]:
    """Train as the recipe says and write the run directory; returns the training summary.

    ``push_to_hub`` is not acted on here (the training room does not import the Hub room): the
    ``train`` command pushes after this returns. ``summary["main_process"]`` says whether this rank
    wrote the run files."""
    from trl import get_peft_config

    from .formats import load_training_dataset
    from .preemption import resolve_resume
    from .recipe import resolved_recipe
    from .trainer import SpectrumTrainer

    if not model_args.model_name_or_path:
        raise SpectrumError("the recipe needs model_name_or_path")
    if not run_args.dataset_name:
        raise SpectrumError("the recipe needs dataset_name (a data file or Hub dataset)")
    # a bad checkpoint is refused here, before the model loads ("false" is not resuming)
    resuming = resolve_resume(config.resume_from_checkpoint, config.output_dir) is not None
    check_output_dir(config.output_dir, run_args.overwrite_output_dir, resuming)

    # Spectrum, prompt/completion and TRL's own single-target rows (text, messages, input_ids).
    text_field = config.dataset_text_field
    train_dataset = load_training_dataset(
        _split_paths(run_args.dataset_name), run_args.dataset_train_split, text_field
    ).dataset
    eval_dataset = None
    if run_args.eval_dataset_name:
        eval_source = _split_paths(run_args.eval_dataset_name)
        eval_dataset = load_training_dataset(eval_source, "train", text_field).dataset

    model, tokenizer = load_recipe_model(model_args, config)
    # The model is built here, so TRL must not apply model_init_kwargs again; and the upload is
    # not Trainer's (which would push the whole output dir including training_args.bin): the train
    # command pushes afterwards with hub.push_trained_run. The token stays out of every file.
    recipe_init_kwargs, config.model_init_kwargs = config.model_init_kwargs, None
    push, config.push_to_hub = config.push_to_hub, False
    config.hub_token = None

    started = time.perf_counter()
    trainer = SpectrumTrainer(
        model,
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    result = trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    trainer.save_model(config.output_dir)
    elapsed = time.perf_counter() - started

    output_dir = Path(config.output_dir)
    if trainer.is_world_process_zero():
        _drop_library_card(output_dir)
    config.model_init_kwargs, config.push_to_hub = recipe_init_kwargs, push
    recipe = resolved_recipe(run_args, config, model_args)
    main_process = trainer.is_world_process_zero()  # under accelerate, one rank writes the run files
    if main_process:
        write_text_atomic(output_dir / RECIPE_FILE, yaml.safe_dump(recipe, sort_keys=True))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    prepared = trainer.train_dataset
    # A TRL single-target row has no completion_ids (or empty ones, beside groups).
    grouped = "completion_ids" in prepared.column_names
    per_row = prepared["completion_ids"] if grouped else [[]] * len(prepared)
    refs = [len(ids) for ids in per_row if ids]
    summary = {
        "model": model_args.model_name_or_path,
        "dataset": run_args.dataset_name,
        "groups": len(refs),
        "multi_reference_groups": sum(count > 1 for count in refs),
        "single_target_rows": len(per_row) - len(refs),
        "mean_references": sum(refs) / len(refs) if refs else None,
        "global_steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "wall_seconds": round(elapsed, 2),
        "seconds_per_step": round(elapsed / max(trainer.state.global_step, 1), 4),
        "spectrum_alpha": config.spectrum_alpha,
        "spectrum_beta": config.spectrum_beta,
        "peft": bool(model_args.use_peft),
        "load_in_4bit": bool(model_args.load_in_4bit),
        "machine": platform.platform(),
        "log_history": trainer.state.log_history,
    }
    if main_process:
        write_json_atomic(output_dir / SUMMARY_FILE, summary)
    summary["main_process"] = main_process
    return summary
