"""The real-model run's own logic (spectrum_tune.demo.real), without a model: sweep choice, effects, KL."""

import json

import pytest

from spectrum_tune.demo.real import (
    REAL_SETS,
    SWEEP,
    check_real_effects,
    choose_setting,
    epoch_means,
    kl_curves,
    plot_kl,
)
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
    arms = {
        "base": dict(zip(keys, (0.0, 0.20, 0.0), strict=True)),
        "sft": dict(zip(keys, (0.10, 0.40, 0.50), strict=True)),
        "spectrum": dict(zip(keys, (0.20, 0.19, 0.47), strict=True)),
    }
    sweep = {"spectrum-a1-b1": {"js": 0.2}, "spectrum-a1-b2": {"js": 0.21}, "spectrum-a2-b1": {"js": 0.25}}
    status = [effect["status"] for effect in check_real_effects(arms, sweep)]
    # coverage 0.20 >= 2 x 0.10; JS 0.19 <= 0.20 and <= base 0.20; accuracy 3 points off; unequal worse
    assert status == ["PASS", "PASS", "MISS", "MISS"]
    arms["spectrum"]["js"] = 0.2001  # above the base: the JS effect must fail
    assert check_real_effects(arms, sweep)[1]["status"] == "MISS"


def test_kl_curves_read_the_trainer_log_and_plot(tmp_path):
    run = tmp_path / "a"
    run.mkdir()
    history = [
        {"step": 2, "loss": 1.0, "spectrum/kl": 0.5},
        {"step": 4, "spectrum/kl": 0.25},
        {"train_loss": 1},
    ]
    (run / "training_summary.json").write_text(json.dumps({"log_history": history}))
    history[0]["epoch"], history[1]["epoch"] = 1.0, 1.6  # logged at the end of epoch 1, inside epoch 2
    (run / "training_summary.json").write_text(json.dumps({"log_history": history}))
    assert epoch_means(run) == [0.5, 0.25]
    history.insert(2, {"step": 5, "epoch": 2.0, "spectrum/kl": 0.75})
    (run / "training_summary.json").write_text(json.dumps({"log_history": history}))
    assert epoch_means(run) == [0.5, 0.5]
    curves = kl_curves({"a": run})
    assert curves == {"a": [(2, 0.5), (4, 0.25), (5, 0.75)]}
    assert plot_kl(curves, tmp_path / "kl.png", "t").stat().st_size > 1000


def test_real_sets_have_their_recipes_and_eval_folders(tmp_path):
    for name, real in REAL_SETS.items():
        for recipe in [*real.arms.values(), real.spectrum]:
            assert (REPO_ROOT / "recipes" / recipe).is_file(), recipe
        assert (REPO_ROOT / "eval/real" / real.style).is_dir()
        options = DemoOptions(out=tmp_path, model=name)
        assert (options.samples, options.seeds) == (30, 3)
    with pytest.raises(SpectrumError, match="unknown demo model"):
        DemoOptions(out=tmp_path, model="gemma-9-real")


def _tiny_recipe(path, base, dataset, output):
    path.write_text(
        f"model_name_or_path: {base}\ndataset_name: {REPO_ROOT / 'data/real' / dataset}\n"
        f"output_dir: {output}\nmax_steps: 2\nper_device_train_batch_size: 4\n"
        "use_peft: true\nlora_r: 8\nlora_alpha: 16\nlora_target_modules: all-linear\n"
        "learning_rate: 1.0e-3\nlogging_steps: 1\nsave_strategy: 'no'\nreport_to: none\n"
    )
    return path.name


def test_the_real_run_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, monkeypatch):
    """The whole orchestration on the tiny world model and the real chat data: sweep on seed 0,
    the chosen setting retrained for the extra seed, --reuse keeps what is done, effects judged."""
    from types import SimpleNamespace

    from spectrum_tune import models
    from spectrum_tune.demo import real

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    arms = {"sft": _tiny_recipe(recipes / "sft.yaml", tiny_model_dir, "train-sft.jsonl", tmp_path / "x")}
    spectrum = _tiny_recipe(recipes / "spectrum.yaml", tiny_model_dir, "train-multiref.jsonl", tmp_path / "y")
    monkeypatch.setitem(real.REAL_SETS, "tiny-real", real.RealSet("tiny", "chat", arms, spectrum))
    monkeypatch.setattr(models, "fetch_model", lambda name: (tiny_model_dir, None))
    out = tmp_path / "run"
    options = SimpleNamespace(
        model="tiny-real",
        recipes_dir=recipes,
        out=out,
        steps=None,
        seeds=1,
        reuse=True,
        workers=1,
        progress=False,
        samples=2,
        quick=False,
    )
    first = real.run_real(options)
    assert first["settings"]["seeds"] == 1 and first["chosen"] in first["sweep"]
    # issue 20's effects, not the tiny world's seven
    assert [e["status"] in ("PASS", "MISS") for e in first["effects"]] == [True] * 4
    kept = (out / "sft" / "seed-0" / "training_summary.json").stat().st_mtime_ns

    options.seeds = 2
    second = real.run_real(options)
    assert (out / "sft" / "seed-0" / "training_summary.json").stat().st_mtime_ns == kept  # reused
    chosen = second["chosen"]
    assert (out / chosen / "seed-1" / "eval" / "results.json").is_file()
    assert (out / "base" / "seed-1" / "eval" / "results.json").is_file()
    assert len(second["per_seed"]["spectrum"]) == 2 and f"{chosen} seed 1" in second["kl_epochs"]
    assert all(len(means) == 1 for means in second["kl_epochs"].values())  # 2 steps of 4 rows: one epoch
    report = (out / "report.md").read_text()
    assert "Seeds: 2" in report and "coverage >= 2x SFT" in report and "last / previous" in report
