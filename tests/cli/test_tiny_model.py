"""``spectrum-tune tiny-model``: the shipped model's path, and --rebuild's comparison with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spectrum_tune import world
from spectrum_tune.cli import main


def test_prints_the_shipped_model(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(world.CACHE_ENV, str(tmp_path))
    assert main(["tiny-model"]) == 0
    assert capsys.readouterr().out.strip() == str(world.SHIPPED_DIR)
    assert list(tmp_path.iterdir()) == []  # nothing built


@pytest.mark.parametrize("same", [True, False])
def test_rebuild_says_whether_the_weights_match_the_shipped_ones(same, capsys, tmp_path, monkeypatch):
    def fake_build(out_dir, config, progress=True):  # stands in for the minutes of pretraining
        shutil.copytree(world.SHIPPED_DIR, out_dir)
        if not same:
            (Path(out_dir) / "model.safetensors").write_bytes(b"other weights")
        return Path(out_dir)

    monkeypatch.setattr(world, "build_tiny_model", fake_build)
    monkeypatch.setenv(world.CACHE_ENV, str(tmp_path))
    assert main(["tiny-model", "--rebuild"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(tmp_path / f"tiny-{world.config_key(world.TinyConfig())}")
    assert lines[1].startswith("weights identical to" if same else "weights differ from")
    assert world.tiny_model_path() == world.SHIPPED_DIR  # a rebuild never replaces the shipped model
