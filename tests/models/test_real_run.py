"""The real-model run's own logic (spectrum_tune.demo.real), without a model: sweep choice, effects, KL."""

import json

import pytest

from spectrum_tune.demo.real import REAL_SETS, SWEEP, check_real_effects, choose_setting, kl_curves, plot_kl
from spectrum_tune.demo.run import REPO_ROOT, DemoOptions
from spectrum_tune.errors import SpectrumError


def test_sweep_has_the_forcing_diffuse_loss_and_two_unequal_settings():
    assert SWEEP[0] == (1.0, 1.0) and sum(alpha != beta for alpha, beta in SWEEP) >= 2


def test_choose_setting_is_lowest_tuned_js_and_ties_go_to_the_first():
    scores = {"spectrum-a1-b1": {"js": 0.20}, "spectrum-a1-b2": {"js": 0.15}, "spectrum-a2-b1": {"js": 0.3}}
    assert choose_setting(scores) == "spectrum-a1-b2"
    assert choose_setting({"spectrum-a1-b1": {"js": 0.1}, "spectrum-a1-b2": {"js": 0.1}}) == "spectrum-a1-b1"


def test_real_effects_against_hand_set_numbers():
    keys = ("coverage_extracted", "js", "accuracy_extracted")
    arms = {"base": dict(zip(keys, (0.0, 0.20, 0.0), strict=True)),
            "sft": dict(zip(keys, (0.10, 0.40, 0.50), strict=True)),
            "spectrum": dict(zip(keys, (0.20, 0.19, 0.47), strict=True))}
    sweep = {"spectrum-a1-b1": {"js": 0.2}, "spectrum-a1-b2": {"js": 0.21}, "spectrum-a2-b1": {"js": 0.25}}
    status = [effect["status"] for effect in check_real_effects(arms, sweep)]
    # coverage 0.20 >= 2 x 0.10; JS 0.19 <= 0.20 and <= base 0.20; accuracy 3 points off; unequal worse
    assert status == ["PASS", "PASS", "MISS", "MISS"]
    arms["spectrum"]["js"] = 0.2001  # above the base: the JS effect must fail
    assert check_real_effects(arms, sweep)[1]["status"] == "MISS"


def test_kl_curves_read_the_trainer_log_and_plot(tmp_path):
    run = tmp_path / "a"
    run.mkdir()
    history = [{"step": 2, "loss": 1.0, "spectrum/kl": 0.5}, {"step": 4, "spectrum/kl": 0.25},
               {"train_loss": 1}]
    (run / "training_summary.json").write_text(json.dumps({"log_history": history}))
    curves = kl_curves({"a": run})
    assert curves == {"a": [(2, 0.5), (4, 0.25)]}
    assert plot_kl(curves, tmp_path / "kl.png", "t").stat().st_size > 1000


def test_real_sets_have_their_recipes_and_eval_folders(tmp_path):
    for name, real in REAL_SETS.items():
        for recipe in [*real.arms.values(), real.spectrum]:
            assert (REPO_ROOT / "recipes" / recipe).is_file(), recipe
        assert (REPO_ROOT / "eval/real" / real.style).is_dir()
        assert DemoOptions(out=tmp_path, model=name).samples == 30
    with pytest.raises(SpectrumError, match="unknown demo model"):
        DemoOptions(out=tmp_path, model="gemma-9-real")
