"""GRPO and DPO runs on the tiny model finish (a few steps), recipes refuse unknown keys, and the
divpo-pairs command writes a DPO dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from spectrum_tune.cli import main as cli
from spectrum_tune.errors import SpectrumError
from spectrum_tune.rl.recipe import parse_dpo_args, parse_grpo_args

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CHAT = [{"role": "user", "content": "Pick a number between 1 and 6."}]


def _prompts(path: Path) -> Path:
    rows = [
        {"prompt": CHAT, "references": ["1", "2", "3", "4", "5", "6"]},
        {
            "prompt": [{"role": "user", "content": "Pick a number between 0 and 9."}],
            "validator": {"int_range": {"min": 0, "max": 9}},
        },
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _common(model: Path, out: Path) -> list[str]:
    return [
        "--model_name_or_path",
        str(model),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--disable_tqdm",
        "true",
        "--logging_steps",
        "1",
    ]


def test_grpo_recipe_runs_on_the_tiny_model(tiny_model_dir, tmp_path):
    data = _prompts(tmp_path / "prompts.jsonl")
    out = tmp_path / "grpo"
    argv = [
        "grpo",
        "--config",
        str(RECIPES / "tiny-grpo-diversity.yaml"),
        "--dataset_name",
        str(data),
        "--per_device_train_batch_size",
        "8",
        "--num_generations",
        "4",
        *_common(tiny_model_dir, out),
    ]
    assert cli(argv) == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_steps"] == 2 and summary["reward_funcs"] == ["diversity_reward"]
    assert (out / "adapter_model.safetensors").is_file()
    saved = yaml.safe_load((out / "spectrum_recipe.yaml").read_text())
    assert saved["reward_funcs"] == ["diversity"]
    # the saved recipe re-parses as it is (the run can be repeated with --config)
    run_args, config, _ = parse_grpo_args(["--config", str(out / "spectrum_recipe.yaml")])
    assert run_args.diversity_quality == "popularity" and config.num_generations == 4


def test_divpo_pairs_then_dpo_on_the_tiny_model(tiny_model_dir, tmp_path):
    data = _prompts(tmp_path / "prompts.jsonl")
    pairs = tmp_path / "pairs.jsonl"
    argv = [
        "divpo-pairs",
        str(data),
        "--model",
        str(tiny_model_dir),
        "--samples",
        "12",
        "--max-new-tokens",
        "4",
        "--top-fraction",
        "0.5",
        "--out",
        str(pairs),
    ]
    assert cli(argv) == 0
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert rows and all(set(row) >= {"prompt", "chosen", "rejected"} for row in rows)
    assert all(row["chosen_score"] >= row["rejected_score"] for row in rows)
    out = tmp_path / "dpo"
    argv = [
        "dpo",
        "--config",
        str(RECIPES / "tiny-dpo.yaml"),
        "--dataset_name",
        str(pairs),
        "--per_device_train_batch_size",
        "2",
        *_common(tiny_model_dir, out),
    ]
    assert cli(argv) == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_steps"] == 2 and summary["trainer"] == "dpo"


def test_unknown_recipe_key_is_named(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model_name_or_path: x\nnum_generation: 8\n")
    with pytest.raises(SpectrumError, match=r"unknown key\(s\) num_generation .*spectrum-tune grpo --help"):
        parse_grpo_args(["--config", str(recipe)])
    with pytest.raises(SpectrumError, match=r"unknown key\(s\) num_generation"):
        parse_dpo_args(["--config", str(recipe)])


def test_unknown_reward_name_and_bad_pair_rows(tmp_path, capsys):
    from spectrum_tune.rl.data import load_pair_rows
    from spectrum_tune.rl.recipe import resolve_rewards

    run_args, _, _ = parse_grpo_args(["--config", str(RECIPES / "tiny-grpo.yaml"), "--reward_funcs", "nope"])
    with pytest.raises(SpectrumError, match="unknown reward function 'nope'"):
        resolve_rewards(run_args)
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(SpectrumError, match=f"{bad}:1: missing field 'rejected'"):
        load_pair_rows(str(bad))
    assert cli(["divpo-pairs", str(bad), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "need --model" in capsys.readouterr().err
