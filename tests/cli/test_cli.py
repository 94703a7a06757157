"""The spectrum-tune command: recipes, one-line errors for bad input, the run directory."""

import json

import pytest
import yaml

from spectrum_tune import __version__
from spectrum_tune.cli import main


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        {"prompt": [{"role": "user", "content": "Name a color."}], "references": ["red", "blue"]},
        {
            "prompt": [{"role": "user", "content": "Pick a number between 1 and 3."}],
            "references": ["1", "2", "3"],
            "weights": [0.5, 0.3, 0.2],
        },
        {"prompt": [{"role": "user", "content": "Pick a number between 4 and 5."}], "references": ["5"]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _recipe(tmp_path, toy_dir, data_file, **extra):
    recipe = {
        "model_name_or_path": toy_dir,
        "dataset_name": str(data_file),
        "output_dir": str(tmp_path / "run"),
        "max_steps": 2,
        "per_device_train_batch_size": 3,
        "learning_rate": 1e-3,
        "use_peft": True,
        "lora_target_modules": "all-linear",
        "gradient_checkpointing": False,
        "save_strategy": "no",
        "report_to": "none",
        "logging_steps": 1,
    }
    recipe.update(extra)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    # progress bars may precede it; the error itself is the last line, and only one
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and err.count("error: ") == 1
    return last


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"spectrum-tune {__version__}"


def test_train_writes_adapter_recipe_and_summary(tmp_path, toy_dir, data_file, capsys):
    recipe = _recipe(tmp_path, toy_dir, data_file)
    assert main(["train", "--config", str(recipe), "--spectrum_beta", "0.5"]) == 0
    run = tmp_path / "run"
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "spectrum_recipe.yaml",
        "training_summary.json",
    ):
        assert (run / name).is_file(), name
    saved = yaml.safe_load((run / "spectrum_recipe.yaml").read_text())
    assert saved["spectrum_beta"] == 0.5  # the command-line override is what ran
    assert saved["model_name_or_path"] == toy_dir
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["global_steps"] == 2 and summary["multi_reference_groups"] == 2
    # the saved recipe re-runs as a recipe
    assert (
        main(
            [
                "train",
                "--config",
                str(run / "spectrum_recipe.yaml"),
                "--output_dir",
                str(tmp_path / "again"),
                "--max_steps",
                "1",
            ]
        )
        == 0
    )


def test_unknown_recipe_key_is_an_error(tmp_path, toy_dir, data_file, capsys):
    recipe = _recipe(tmp_path, toy_dir, data_file, spectrum_alhpa=2.0)
    err = _error(capsys, ["train", "--config", str(recipe)])
    assert "unknown key(s) spectrum_alhpa" in err and str(recipe) in err
    assert not (tmp_path / "run").exists()


def test_missing_model_path(tmp_path, data_file, capsys):
    recipe = _recipe(tmp_path, "./no/such/model", data_file)
    err = _error(capsys, ["train", "--config", str(recipe)])
    assert "model path './no/such/model' does not exist" in err
    assert not (tmp_path / "run").exists()


def test_bad_data_names_file_and_line(tmp_path, toy_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "references": ["a"]}\n{"prompt": "y", "references": []}\n')
    err = _error(capsys, ["train", "--config", str(_recipe(tmp_path, toy_dir, bad))])
    assert f"{bad}:2: 'references' is empty" in err
    assert not (tmp_path / "run").exists()


def test_reference_longer_than_max_length(tmp_path, toy_dir, data_file, capsys):
    err = _error(capsys, ["train", "--config", str(_recipe(tmp_path, toy_dir, data_file, max_length=8))])
    assert f"{data_file}:1:" in err and "longer than max_length=8" in err


def test_output_dir_holding_a_run_is_refused(tmp_path, toy_dir, data_file, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "adapter_config.json").write_text("{}")
    recipe = _recipe(tmp_path, toy_dir, data_file)
    err = _error(capsys, ["train", "--config", str(recipe)])
    assert "already holds a run" in err and "--overwrite_output_dir" in err
    assert (tmp_path / "run" / "adapter_config.json").read_text() == "{}"


def test_missing_recipe_and_bad_yaml(tmp_path, capsys):
    assert "does not exist" in _error(capsys, ["train", "--config", str(tmp_path / "none.yaml")])
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    assert "not valid YAML" in _error(capsys, ["train", "--config", str(tmp_path / "bad.yaml")])


def test_validate_command(tmp_path, data_file, capsys):
    assert main(["validate", str(data_file)]) == 0
    assert "ok: 3 groups, 6 references (2 multi-reference groups)" in capsys.readouterr().out


def test_every_shipped_recipe_parses():
    from pathlib import Path

    from spectrum_tune.rl.recipe import parse_dpo_args, parse_grpo_args
    from spectrum_tune.training.recipe import parse_train_args

    recipes = sorted(Path(__file__).parents[2].glob("recipes/*.yaml"))
    assert len(recipes) >= 6
    # the RL recipes have their own keys (RLP is a GRPO recipe)
    parsers = {"grpo": parse_grpo_args, "rlp": parse_grpo_args, "dpo": parse_dpo_args}
    for recipe in recipes:
        kind = next((name for name in parsers if name in recipe.stem.split("-")), None)
        run_args, config, model_args = parsers.get(kind, parse_train_args)(["--config", str(recipe)])
        assert model_args.model_name_or_path and run_args.dataset_name and config.output_dir, recipe


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


CHAT_ROWS = [
    {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"}]},
]


def test_train_and_validate_take_trl_rows_beside_groups(tmp_path, toy_dir, data_file, capsys):
    mixed = _jsonl(
        tmp_path / "mixed.jsonl",
        [json.loads(line) for line in data_file.read_text().splitlines()] + CHAT_ROWS,
    )
    assert main(["validate", str(mixed)]) == 0
    assert "ok: 3 groups, 6 references (2 multi-reference groups), 2 TRL single-target rows" in (
        capsys.readouterr().out
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(_recipe(tmp_path, toy_dir, mixed, max_steps=1, per_device_train_batch_size=5)),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert (summary["groups"], summary["single_target_rows"]) == (3, 2)


def test_train_takes_a_plain_text_dataset(tmp_path, toy_dir, capsys):
    text = _jsonl(tmp_path / "text.jsonl", [{"text": "the cat sat"}, {"text": "a dog ran far"}])
    assert main(["train", "--config", str(_recipe(tmp_path, toy_dir, text, max_steps=1))]) == 0
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert (summary["groups"], summary["single_target_rows"], summary["mean_references"]) == (0, 2, None)


def test_trl_rows_of_two_formats_name_the_line(tmp_path, toy_dir, capsys):
    bad = _jsonl(tmp_path / "bad.jsonl", [*CHAT_ROWS, {"text": "plain"}])
    err = _error(capsys, ["validate", str(bad)])
    assert f"{bad}:3:" in err and "TRL reads one format per dataset" in err
    err = _error(capsys, ["train", "--config", str(_recipe(tmp_path, toy_dir, bad))])
    assert f"{bad}:3:" in err and not (tmp_path / "run").exists()
