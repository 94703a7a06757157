"""What a published repo may say about the machine it was trained on: nothing.

A run directory records local paths (the base model's directory, the data files, the output
directory, the eval's task files; PEFT writes the base path into adapter_config.json). The staged
copy replaces each with what a stranger can use: the base model's Hub id where there is one (the
aliases map to theirs), else its alias or bare name, and bare file names for data that is not
uploaded. :func:`find_in_files` is the final check that nothing slipped through.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from .run_dir import hub_id

__all__ = ["LOCAL_DATA_NOTE", "find_in_files", "public_base", "public_recipe", "public_results"]

# Recipe keys that name data: a Hub dataset id stays, a local file becomes its bare name.
DATA_KEYS = ("dataset_name", "eval_dataset_name")
LOCAL_DATA_NOTE = "not uploaded: point `{key}` at your copy"
_SCAN_CHUNK = 16 << 20


def _looks_local(value: str) -> bool:
    return value.startswith(("/", "~", "./", "../")) or Path(value).expanduser().exists()


def public_base(name: str | None) -> str | None:
    """The base model as a stranger can name it: its Hub id, else the alias, else the bare name."""
    from ..models import SMOLLM2_ALIAS, TINY_ALIAS

    if not name:
        return None
    if name == SMOLLM2_ALIAS or hub_id(name):
        return hub_id(name)
    return name if name == TINY_ALIAS else Path(name).expanduser().name


def public_recipe(recipe: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The recipe with every local path replaced, and ``{key: note}`` for the data not uploaded.

    An alias base becomes its Hub id (and loses the GGUF file name: the Hub repo is safetensors);
    ``output_dir`` and any other absolute path keep only their last component.
    """
    public = copy.deepcopy(recipe)
    notes: dict[str, str] = {}
    base = public.get("model_name_or_path")
    if isinstance(base, str):
        public["model_name_or_path"] = public_base(base)
        init = public.get("model_init_kwargs")
        if public["model_name_or_path"] != base and isinstance(init, dict) and "gguf_file" in init:
            init = {key: value for key, value in init.items() if key != "gguf_file"}
            public["model_init_kwargs"] = init or None
    for key, value in public.items():
        if key == "model_name_or_path" or not isinstance(value, str):
            continue
        if key in DATA_KEYS:
            parts = [part.strip() for part in value.split(",") if part.strip()]
            local = [part for part in parts if not hub_id(part)]
            public[key] = ",".join(Path(part).name if part in local else part for part in parts)
            if local:
                notes[key] = LOCAL_DATA_NOTE.format(key=key)
        elif key == "output_dir" or _looks_local(value):
            public[key] = Path(value).expanduser().name
    return public, notes


def public_results(results: dict[str, Any], base: str | None, adapter: str | None) -> dict[str, Any]:
    """A results.json fit to publish: model/adapter named publicly, task paths relative, no tracebacks."""
    public = copy.deepcopy(results)
    public["model"] = base if base is not None else public_base(results.get("model"))
    if public.get("adapter"):
        public["adapter"] = adapter or Path(str(results["adapter"])).name
    backend = public.get("backend")
    if isinstance(backend, dict) and backend.get("tokenizer"):  # a served run's local tokenizer path
        backend["tokenizer"] = public_base(backend["tokenizer"])
    for task in public.get("tasks", {}).values():
        if task.get("path"):
            task["path"] = f"{task.get('suite', 'custom')}/{Path(task['path']).name}"
        task.pop("traceback", None)  # file paths of this machine, and of no use to a reader
    return public


def machine_paths(*paths: str | Path | None) -> list[str]:
    """Local paths that must not appear in a published folder (resolved; plus the environment's)."""
    found = {str(Path(path).expanduser().resolve()) for path in paths if path}
    found |= {sys.prefix, os.path.expanduser("~") + os.sep}
    return sorted(path for path in found if len(path) > 4)  # "/" or "/tmp" alone would match anything


def find_in_files(folder: Path, needles: list[str]) -> tuple[str, str] | None:
    """``(file, needle)`` for the first file under ``folder`` containing one of ``needles``, read in
    chunks (a needle across a chunk boundary is still found); None if no file does."""
    encoded = [needle.encode() for needle in needles if needle]
    if not encoded:
        return None
    overlap = max(len(needle) for needle in encoded) - 1
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        with path.open("rb") as stream:
            tail = b""
            while chunk := stream.read(_SCAN_CHUNK):
                window = tail + chunk
                for needle in encoded:
                    if needle in window:
                        return path.relative_to(folder).as_posix(), needle.decode()
                tail = window[-overlap:] if overlap else b""
    return None


def rewrite_adapter_config(path: Path, base: str | None) -> None:
    """PEFT records the base model's local path; point it at the public base instead."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
