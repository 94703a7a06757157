"""Recipes: one YAML holding script, model/PEFT and SpectrumConfig keys, parsed like TRL's --config.

Command-line ``--key value`` pairs override the file; an unknown key is an error that names it.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpectrumError

__all__ = ["RunArguments", "parse_recipe_args", "parse_train_args", "resolved_recipe"]

# Keys whose values must never land in a file or a log line.
SECRET_KEYS = {"hub_token", "push_to_hub_token"}
# Written even at their default values, so the saved recipe says what ran.
ALWAYS_KEYS = {
    "model_name_or_path", "dataset_name", "output_dir", "seed", "learning_rate", "max_steps",
    "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "use_peft",
}


@dataclass
class RunArguments:
    """Script-level keys of a spectrum-tune recipe (beside SpectrumConfig and TRL's ModelConfig)."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Training data: a .jsonl/.json/.parquet file (several joined by commas) of "
            "multi-reference or prompt/completion rows, or a Hub dataset id."
        },
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split of a Hub dataset."})
    eval_dataset_name: str | None = field(
        default=None, metadata={"help": "Optional held-out rows for the trainer's eval loss."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Allow writing into an output_dir that already holds another run."},
    )


def _parser():
    from trl import ModelConfig, TrlParser

    from .trainer import SpectrumConfig

    return TrlParser((RunArguments, SpectrumConfig, ModelConfig), prog="spectrum-tune train")


def _check_recipe_file(path: str) -> dict[str, Any]:
    recipe = Path(path)
    if not recipe.is_file():
        raise SpectrumError(f"recipe '{path}' does not exist")
    try:
        content = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpectrumError(f"recipe '{where}' is not valid YAML: {problem}") from None
    if not isinstance(content, dict):
        raise SpectrumError(f"recipe '{path}' must be a YAML mapping of keys to values")
    return content


def parse_recipe_args(argv: list[str], parser: Any, command: str) -> tuple[Any, ...]:
    """Parse ``--config recipe.yaml`` plus overrides with ``parser`` (a ``TrlParser``); a recipe
    key the parser does not know is an error naming it (``command`` names the help to read)."""
    known = {action.dest for action in parser._actions}
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise SpectrumError("--config needs a recipe path")
        recipe_path = argv[index + 1]
        unknown = sorted(set(_check_recipe_file(recipe_path)) - known - {"env"})
        if unknown:
            raise SpectrumError(
                f"recipe '{recipe_path}': unknown key(s) {', '.join(unknown)} "
                f"(see `spectrum-tune {command} --help` for the keys)"
            )
    try:
        return tuple(parser.parse_args_and_config(argv))
    except ValueError as error:
        raise SpectrumError(f"invalid recipe or argument: {error}") from None


def parse_train_args(argv: list[str]) -> tuple[Any, Any, Any]:
    """Parse ``--config recipe.yaml`` plus overrides into (RunArguments, SpectrumConfig, ModelConfig)."""
    run_args, config, model_args = parse_recipe_args(argv, _parser(), "train")
    return run_args, config, model_args


def resolved_recipe(*parts: Any) -> dict[str, Any]:
    """Every key that differs from its default (plus the keys that define a run), across the
    dataclasses: a recipe that re-runs the run with ``--config``."""
    resolved: dict[str, Any] = {}
    for part in parts:
        defaults = type(part)(**_required_defaults(part))
        for item in dataclasses.fields(part):
            if item.name in SECRET_KEYS or not item.init:
                continue
            value = getattr(part, item.name)
            always = item.name in ALWAYS_KEYS or item.name.startswith("spectrum_")
            if always or value != getattr(defaults, item.name, object()):
                resolved[item.name] = _plain(value)
    return resolved


def _required_defaults(part: Any) -> dict[str, Any]:
    # TrainingArguments needs output_dir to be constructed; a default instance borrows it.
    return {"output_dir": part.output_dir} if hasattr(part, "output_dir") else {}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):  # before str: TrainingArguments' enums subclass str
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)
