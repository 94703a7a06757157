"""What a run directory holds and what of it may be uploaded (explicit allow-lists)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpectrumError
from ..training.recipe import SECRET_KEYS
from ..training.train import RECIPE_FILE, SUMMARY_FILE

CARD_FILE = "README.md"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
# Explicit allow-lists: a run dir also holds training_args.bin (a pickle of the TrainingArguments,
# hub_token included), checkpoints and logs, none of which may be uploaded.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "vocab.json", "vocab.txt", "merges.txt",
    "tokenizer.model", "spiece.model",
)  # fmt: skip
MODEL_CONFIG_FILES = ("config.json", "generation_config.json")
EVAL_FILES = ("results.json", "report.md")
EVAL_DIR_IN_REPO = "eval"
CI_SUFFIXES = ("_ci_low", "_ci_high")
BASE_TAGS = ("spectrum-tune", "trl")
_LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".txt", ".gguf", ".yaml", ".yml")


@dataclass
class Run:
    """What a run directory holds that the upload and the card need."""

    path: Path
    kind: str  # "adapter" (PEFT) or "full" (a full fine-tune saved with save_pretrained)
    recipe: dict[str, Any]
    summary: dict[str, Any]
    weights: list[str] = field(default_factory=list)
    adapter_config: dict[str, Any] = field(default_factory=dict)


def read_run(run_dir: str | Path) -> Run:
    """Check ``run_dir`` is a finished spectrum-tune run and read its recipe and summary."""
    path = Path(run_dir)
    if not path.is_dir():
        raise SpectrumError(f"run directory '{run_dir}' does not exist")
    recipe_path = path / RECIPE_FILE
    if not recipe_path.is_file():
        raise SpectrumError(f"'{run_dir}' has no {RECIPE_FILE}: not a spectrum-tune run directory")
    try:
        recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise SpectrumError(f"'{recipe_path}' is not valid YAML") from None
    if not isinstance(recipe, dict):
        raise SpectrumError(f"'{recipe_path}' is not a recipe (a YAML mapping)")
    # Defence in depth: train.py never writes these keys, but a hand-edited recipe might.
    recipe = {key: value for key, value in recipe.items() if key not in SECRET_KEYS}
    summary_path = path / SUMMARY_FILE
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}

    if (path / "adapter_config.json").is_file():
        if not (path / "adapter_model.safetensors").is_file():
            raise SpectrumError(f"'{run_dir}' has adapter_config.json but no adapter_model.safetensors")
        adapter_config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        return Run(path, "adapter", recipe, summary, list(ADAPTER_FILES), adapter_config)
    weights = sorted(p.name for p in path.glob("model*.safetensors"))
    if (path / "config.json").is_file() and weights:
        index = [name for name in ("model.safetensors.index.json",) if (path / name).is_file()]
        return Run(path, "full", recipe, summary, weights + index)
    raise SpectrumError(
        f"'{run_dir}' holds no adapter (adapter_model.safetensors + adapter_config.json) "
        "and no full model (config.json + model*.safetensors)"
    )


def hub_id(name: Any) -> str | None:
    """``name`` if it can only be a Hub repo id: not a local path, a data file or the tiny alias."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from ..models import SMOLLM2_ALIAS, TINY_ALIAS, hub_id_of

    if name == SMOLLM2_ALIAS:  # an alias stands for its Hub model (the tiny one has none)
        return hub_id_of(name)
    if not isinstance(name, str) or name == TINY_ALIAS or name.startswith((".", "/", "~")):
        return None
    if name.lower().endswith(_LOCAL_SUFFIXES) or Path(name).expanduser().exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def base_license(base: str | None) -> str | None:
    """The base model's license from its README metadata, when a copy is on this machine."""
    from huggingface_hub import metadata_load, try_to_load_from_cache

    from ..models import alias_license

    if not base:
        return None
    if alias_license(base):
        return alias_license(base)
    readme: Any = Path(base).expanduser() / CARD_FILE
    if not readme.is_file() and hub_id(base):
        readme = try_to_load_from_cache(base, CARD_FILE)  # offline: only what is already cached
    if not isinstance(readme, (str, Path)) or not Path(readme).is_file():
        return None
    try:
        license_id = (metadata_load(readme) or {}).get("license")
    except (ValueError, yaml.YAMLError):
        return None
    return license_id if isinstance(license_id, str) else None
