"""The demo end to end on a reduced config: the direction of the headline effects.

The full demo (3 seeds, the recipes' steps, 100 samples) is the README's main command; here one
seed, 60 steps and 30 samples check that SFT collapses the held-out distributions (effect 1),
that spectrum tuning cures it (effect 2) and that it keeps closed-task accuracy (effect 7).
"""

import json

import pytest

from spectrum_tune.demo.run import DemoOptions, run_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_demo(DemoOptions(out=out, quick=True, steps=60, samples=30, workers=2, progress=False))
    return out, report


def test_demo_writes_report_results_plots_and_adapters(demo):
    out, report = demo
    assert (out / "report.md").read_text().startswith("# spectrum-tune demo")
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["arms"]) == {"base", "sft", "gem", "iid", "spectrum"}
    assert len(saved["effects"]) == 8
    for arm in ("sft", "gem", "iid", "spectrum"):
        assert (out / arm / "seed-0" / "adapter_model.safetensors").is_file()
    assert (out / "plots" / "js_per_task.png").is_file()
    assert any(path.name.startswith("hist_") for path in (out / "plots").iterdir())
    assert report["settings"]["seeds"] == 1


def test_direction_of_effects(demo):
    arms = demo[1]["arms"]

    def means(arm):
        return {key: stats["mean"] for key, stats in arms[arm].items()}

    base, sft, spectrum = means("base"), means("sft"), means("spectrum")
    # 1. the collapse is real: SFT moves away from the targets on held-out prompts
    assert sft["js"] > 2 * base["js"]
    # 2. the cure: spectrum is far closer to the targets than SFT, and covers more
    assert spectrum["js"] < 0.5 * sft["js"]
    assert spectrum["coverage"] > sft["coverage"]
    # 7. accuracy is kept: spectrum's closed-task accuracy is not below SFT's by more than noise
    assert spectrum["accuracy"] >= sft["accuracy"] - 0.05
    assert spectrum["accuracy"] > base["accuracy"] - 0.02
