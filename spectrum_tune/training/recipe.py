"""Recipes: one YAML holding script, model/PEFT and SpectrumConfig keys, parsed like TRL's --config.

Command-line ``--key value`` pairs override the file; an unknown key is an error that names it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
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
    "model_name_or_path",
    "dataset_name",
    "output_dir",
    "seed",
    "learning_rate",
    "max_steps",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "use_peft",
    "lr_scheduler_type",
    "warmup_steps",
    "max_length",
    "gradient_checkpointing",
}
# Written whenever use_peft is on, so the card and a re-run see the adapter's shape.
PEFT_KEYS = {"lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "load_in_4bit"}


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


class _ArgumentError(Exception):
    """argparse's complaint, raised instead of printing the usage and exiting."""


def _parser():
    from trl import ModelConfig, TrlParser

    from .trainer import SpectrumConfig

    class RecipeParser(TrlParser):
        # argparse prints the whole usage (165 lines) and exits on a bad value; the caller turns
        # the complaint into one line naming the recipe file or the flag instead.
        def error(self, message: str) -> None:  # type: ignore[override]
            raise _ArgumentError(message)

    return RecipeParser((RunArguments, SpectrumConfig, ModelConfig), prog="spectrum-tune train")


# What to write instead, by argparse's complaint.
_ADVICE = {
    "invalid float value": "give a number, e.g. 2.0e-4",
    "invalid int value": "give a whole number, e.g. 8",
    "invalid string_to_bool value": "give true or false",
    "expected one argument": "give it a value",
}
_ARGUMENT = re.compile(r"^argument --(?P<key>[\w]+)(?:/[^:]*)?: (?P<problem>.*)$")


def _argument_message(message: str, where: Any) -> str:
    """One line for an argparse complaint: the recipe file and key, or the flag, and what to do."""
    match = _ARGUMENT.match(message.strip())
    if match is None:
        if message.startswith("unrecognized arguments"):
            return f"{message} (see `spectrum-tune train --help` for the keys)"
        return f"invalid argument: {message}"
    key, problem = match["key"], match["problem"]
    advice = next((text for start, text in _ADVICE.items() if problem.startswith(start)), None)
    problem = problem.replace(": '", " '", 1) if advice and "choice" not in problem else problem
    return f"{where(key)}: {problem}" + (f"; {advice}" if advice else "")


# Value ranges argparse cannot check and the libraries only reject deep inside training (with a
# traceback), or not at all: (key, test, what it must be). Checked after parsing.
_RANGES = (
    ("lora_r", lambda v: isinstance(v, int) and v >= 1, "a positive whole number (e.g. 16)"),
    ("lora_alpha", lambda v: v > 0, "a positive number (e.g. 32, often 2 x lora_r)"),
    ("lora_dropout", lambda v: 0 <= v < 1, "in [0, 1) (e.g. 0.05)"),
    ("learning_rate", lambda v: v >= 0, "a non-negative number (e.g. 2.0e-4)"),
    ("per_device_train_batch_size", lambda v: v >= 1, "a positive whole number"),
    ("gradient_accumulation_steps", lambda v: v >= 1, "a positive whole number"),
    ("max_length", lambda v: v is None or v >= 1, "a positive whole number or null"),
    ("max_steps", lambda v: v == -1 or v >= 1, "a positive whole number, or -1 to train num_train_epochs"),
    ("num_train_epochs", lambda v: v > 0, "a positive number"),
    ("warmup_steps", lambda v: v >= 0, "a non-negative number"),
)


def _check_ranges(parts: tuple[Any, ...], where: Any) -> None:
    for key, test, wanted in _RANGES:
        for part in parts:
            if hasattr(part, key):
                value = getattr(part, key)
                if isinstance(value, bool) or not test(value):
                    raise SpectrumError(f"{where(key)} must be {wanted}, got {value!r}")


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
    """Parse ``--config recipe.yaml`` plus overrides with ``parser`` (a ``TrlParser``) into its
    dataclasses. Every problem is one :class:`SpectrumError` line naming the recipe file and key
    (or the flag) and what to write instead: no usage dump, no traceback (``command`` names the
    help to read).
    """
    known = {action.dest for action in parser._actions}
    recipe_path, recipe_keys = None, set()
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise SpectrumError("--config needs a recipe path")
        recipe_path = argv[index + 1]
        recipe_keys = set(_check_recipe_file(recipe_path))
        unknown = sorted(recipe_keys - known - {"env"})
        if unknown:
            raise SpectrumError(
                f"recipe '{recipe_path}': unknown key(s) {', '.join(unknown)} "
                f"(see `spectrum-tune {command} --help` for the keys)"
            )
    cli_keys = {arg[2:].split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--")}

    def where(key: str) -> str:
        return f"recipe '{recipe_path}': {key}" if key in recipe_keys and key not in cli_keys else f"--{key}"

    try:
        parts = parser.parse_args_and_config(argv)
    except _ArgumentError as error:
        raise SpectrumError(_argument_message(str(error), where)) from None
    except (ValueError, TypeError) as error:  # the configs' own __post_init__ checks
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        unused = re.search(r"not used by the HfArgumentParser: \[(.*)\]", reason)
        if unused:  # command-line flags no dataclass knows
            words = [word.strip("'\"") for word in unused[1].split(", ")]
            flags = " ".join(word for word in words if word.startswith("-"))
            raise SpectrumError(
                f"unknown argument(s) {flags} (see `spectrum-tune {command} --help`)"
            ) from None
        source = f"recipe '{recipe_path}'" if recipe_path else "invalid argument"
        raise SpectrumError(f"{source}: {reason}") from None
    _check_ranges(tuple(parts), where)
    return tuple(parts)


def parse_train_args(argv: list[str]) -> tuple[Any, Any, Any]:
    """Parse ``--config recipe.yaml`` plus overrides into (RunArguments, SpectrumConfig, ModelConfig)."""
    run_args, config, model_args = parse_recipe_args(argv, _parser(), "train")
    return run_args, config, model_args


def resolved_recipe(*parts: Any) -> dict[str, Any]:
    """Every key that differs from its default (plus the keys that define a run), across the
    dataclasses: a recipe that re-runs the run with ``--config``."""
    resolved: dict[str, Any] = {}
    peft = any(getattr(part, "use_peft", False) for part in parts)
    for part in parts:
        defaults = type(part)(**_required_defaults(part))
        for item in dataclasses.fields(part):
            if item.name in SECRET_KEYS or not item.init:
                continue
            value = getattr(part, item.name)
            always = (
                item.name in ALWAYS_KEYS
                or item.name.startswith("spectrum_")
                or (peft and item.name in PEFT_KEYS)
            )
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
