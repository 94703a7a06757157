"""Prismatic selection: over-represented gradient clusters give way, rounds run to the target, and
G-Vendi is reported before and after."""

import json

import numpy as np
import pytest

from spectrum_tune.data_build import DataBuildConfig, TeacherSpec, build_data
from spectrum_tune.data_build import select as select_module

from .conftest import write_jsonl


def _record(i):
    return {"source": f"p:{i + 1}", "prompt": f"prompt {i}", "references": ["a"], "weights": [1.0]}


def test_an_over_represented_cluster_is_down_sampled(monkeypatch):
    # prompts 0-9 sit in one tight cluster, 10 and 11 in another: a random 4 would mostly be the first
    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal([1, 0], 0.01, (10, 2)), rng.normal([0, 1], 0.01, (2, 2))])

    def fake_features(model, tokenizer, rows, indices, **kwargs):
        return np.stack([points[int(p.split()[1])] for p in rows.prompts])

    monkeypatch.setattr(select_module, "gradient_features", fake_features)
    monkeypatch.setattr(select_module, "load_model", lambda name: None)
    monkeypatch.setattr(select_module, "load_tokenizer", lambda name: None)
    built = []

    def build(indices):
        built.append(indices)
        return [_record(i) for i in indices]

    config = DataBuildConfig(
        data="x",
        out="y",
        teachers=[TeacherSpec("m")],
        select=4,
        select_batch=6,
        select_clusters=2,
        progress=False,
    )
    records, summary = select_module.prismatic_select(config, 12, build)
    chosen = sorted(int(r["prompt"].split()[1]) for r in records)
    assert len(chosen) == 4 and {10, 11} <= set(chosen)  # both rows of the sparse cluster
    assert sum(len(b) for b in built) == 12 and len(summary["rounds"]) == 2  # one round was not enough
    assert summary["rounds"][0]["kept"] < 4  # the first round's excess in the big cluster was dropped
    assert summary["g_vendi_selected"] > summary["g_vendi_random_same_size"]
    assert len(summary["dropped_sources"]) == 8


def test_selection_end_to_end_on_a_toy_teacher(tmp_path, teacher_dirs):
    data = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"Name a color number {i}."} for i in range(8)])
    config = DataBuildConfig(
        data=str(data),
        out=tmp_path / "out",
        teachers=[TeacherSpec(teacher_dirs[0])],
        samples=4,
        max_new_tokens=2,
        select=3,
        select_batch=4,
        select_clusters=2,
        grad_dim=16,
        progress=False,
    )
    summary = build_data(config)
    rows = [json.loads(line) for line in (config.out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == summary["rows"] == summary["selection"]["selected"] == 3
    assert summary["selection"]["g_vendi_all_built"] >= 1.0
    assert "Prismatic selection" in (config.out / "report.md").read_text()
    with pytest.raises(Exception, match="--select must be >= 1"):
        build_data(DataBuildConfig(data=str(data), out=tmp_path / "o", teachers=[TeacherSpec("m")], select=0))
