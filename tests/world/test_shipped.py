"""The tiny model ships with the package, so every machine loads the same weights: the demo's
numbers then differ across machines only where tuning and evaluation themselves round
differently, not because each machine pretrained its own base."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from spectrum_tune import world

ROOT = Path(__file__).resolve().parents[2]
# sha256 of the shipped files that decide the model's outputs. Rebuilding the model
# (`spectrum-tune tiny-model --rebuild --out spectrum_tune/world/shipped/tiny`) changes every
# number of the demo: update these together with the README's demo table and docs/results/demo.md.
PINNED = {
    "model.safetensors": "8e658a5db8b7fc5d8732a5655f215f5a3fd33090ca44128b2ce40f62c49e3861",
    "tokenizer.json": "317c9ec4ff6ec5f262b6c9c33f8531b537b98ce16d4a243e3835c4aec32ac9ce",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_weights_and_tokenizer_are_pinned():
    for name, digest in PINNED.items():
        assert _sha256(world.SHIPPED_DIR / name) == digest, f"shipped {name} changed"


def test_shipped_model_is_the_default_config_and_is_used(tmp_path, monkeypatch):
    info = json.loads((world.SHIPPED_DIR / world.INFO_FILE).read_text())
    assert info["format_version"] == world.FORMAT_VERSION
    assert info["config"] == json.loads(json.dumps(vars(world.TinyConfig())))
    monkeypatch.setenv(world.CACHE_ENV, str(tmp_path))  # an empty cache: nothing may be built
    assert world.shipped_tiny_model() == world.SHIPPED_DIR
    assert world.tiny_model_path(progress=False) == world.SHIPPED_DIR
    assert list(tmp_path.iterdir()) == []
    # any other config is not the shipped build, and neither is the default with shipped=False
    assert world.shipped_tiny_model(world.TinyConfig(seed=1)) is None


def test_the_alias_loads_the_shipped_model():
    from spectrum_tune.models import resolve_model

    assert Path(resolve_model("spectrum-tune/tiny")[0]) == world.SHIPPED_DIR


def test_shipped_files_are_package_data():
    """A wheel install carries the model: pyproject's package-data names every shipped file."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    line = re.search(r"^spectrum_tune = \[(.*)\]$", pyproject, re.MULTILINE)  # [tool.setuptools.package-data]
    patterns = re.findall(r'"([^"]+)"', line.group(1))
    package = ROOT / "spectrum_tune"
    covered = {path for pattern in patterns for path in package.glob(pattern)}
    shipped = set(world.SHIPPED_DIR.iterdir())
    names = {path.name for path in shipped}
    assert {"model.safetensors", "config.json", "tokenizer.json", world.INFO_FILE} <= names
    assert shipped <= covered
