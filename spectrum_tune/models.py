"""Model and tokenizer loading through the normal ``from_pretrained`` path, with clear errors.

A name is a local directory, a Hub id, the alias ``spectrum-tune/tiny`` for the tiny
offline model (built and cached on first use), or ``spectrum-tune/smollm2`` for the installed
SmolLM2-135M-Instruct GGUF directory (``spectrum-tune models fetch smollm2``). GGUF
checkpoints load with ``gguf_file``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import SpectrumError

__all__ = ["SMOLLM2_ALIAS", "TINY_ALIAS", "load_model", "load_tokenizer", "resolve_model_path"]

TINY_ALIAS = "spectrum-tune/tiny"
SMOLLM2_ALIAS = "spectrum-tune/smollm2"  # offline SmolLM2-135M-Instruct (see offline_models)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_model_path(name_or_path: str) -> str:
    """Return a loadable name: the tiny alias becomes its cached directory; paths must exist."""
    if name_or_path == TINY_ALIAS:
        from .tiny import tiny_model_path

        return str(tiny_model_path())
    if name_or_path == SMOLLM2_ALIAS:  # the GGUF file's directory; gguf_file names the file
        from .offline_models import model_location

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
