"""The RL demo's expected effects are judged as the issue states them."""

from __future__ import annotations

from spectrum_tune.demo.rl import check_rl_effects


def _arm(js: float, coverage: float, validity: float) -> dict[str, float]:
    return {"js": js, "coverage": coverage, "validity": validity}


def test_rl_effects_pass_and_miss():
    means = {
        "start": _arm(0.05, 0.8, 0.9),
        "grpo-quality": _arm(0.20, 0.5, 0.9),  # lost spread
        "grpo-diversity": _arm(0.10, 0.7, 0.885),  # JS exactly 0.5x, validity 1.5 points lower: PASS, PASS
        "grpo-distribution": _arm(0.10, 0.7, 0.87),  # JS PASS, validity 3 points lower: MISS
        "dpo-ordinary": _arm(0.04, 0.85, 0.9),  # kept spread: its effect is a MISS
        "dpo-divpo": _arm(0.03, 0.85, 0.9),  # 0.03 > 0.5 x 0.04: MISS; same validity: PASS
    }
    status = [effect["status"] for effect in check_rl_effects(means)]
    # grpo-quality, dpo-ordinary; then (JS, validity) for diversity, distribution, divpo
    assert status == ["PASS", "MISS", "PASS", "PASS", "PASS", "MISS", "MISS", "PASS"]
