"""The demo's pinned inputs (seeds, base model) and its accuracy effect, judged one-sided."""

from __future__ import annotations

import pytest

from spectrum_tune import world
from spectrum_tune.demo.report import check_effects
from spectrum_tune.demo.run import DemoOptions, demo_seeds


def test_demo_seeds_are_pinned(tmp_path):
    assert demo_seeds(DemoOptions(out=tmp_path)) == [0, 1, 2]
    assert demo_seeds(DemoOptions(out=tmp_path, quick=True)) == [0]


def test_the_demo_base_is_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.setenv(world.CACHE_ENV, str(tmp_path))  # nothing cached: the shipped build is used
    assert world.tiny_model_path(progress=False) == world.SHIPPED_DIR


def _arms(base: float, sft: float, spectrum: float) -> dict[str, dict[str, float]]:
    metrics = {"js": 0.1, "min_coverage_judged": 0.5, "js_new_widths": 0.1, "js_stated": 0.1}
    return {
        name: {**metrics, "accuracy": accuracy}
        for name, accuracy in {"base": base, "sft": sft, "spectrum": spectrum, "iid": 0.5}.items()
    }


@pytest.mark.parametrize(
    ("base", "sft", "spectrum", "status"),
    [
        (0.55, 0.569, 0.593, "PASS"),  # spectrum 2.4 points MORE accurate than SFT: kept, not missed
        (0.55, 0.600, 0.581, "PASS"),  # 1.9 points below: within the allowance
        (0.55, 0.600, 0.570, "MISS"),  # 3 points below
        (0.60, 0.650, 0.590, "MISS"),  # spectrum not above base
        (0.60, 0.590, 0.640, "MISS"),  # SFT not above base
    ],
)
def test_accuracy_kept_is_one_sided(base, sft, spectrum, status):
    effect = next(e for e in check_effects(_arms(base, sft, spectrum)) if e["effect"].startswith("7."))
    assert effect["status"] == status, effect
