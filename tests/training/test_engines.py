"""Every distributed engine trains a mixed dataset on 2 CPU processes exactly like 1 process.

Design (the method of ``test_distributed.py``: sequential sampling, plain SGD, rtol 1e-5 on the
logged loss and grad norm of every step, the 2-process global batch equal to the 1-process one).
Each engine gets ONE launch of the real ``spectrum-tune train`` command through ``accelerate
launch`` (the configs in ``tests/training/accelerate/``, twins of the shipped
``recipes/accelerate/*.yaml``; DDP uses the shipped ``cpu-2proc.yaml`` itself) via the test-side
adapter :mod:`tests.training.cpu_engines`, which also prints which engine really wrapped the model,
so a config that silently fell back to DDP fails here.

One dataset covers the row kinds: 7 groups (K = 1 to 4, short and long references) and 5 TRL
``messages`` rows, shuffled with a fixed seed so that the three steps hand the two ranks different
kinds (asserted below): step 1 TRL rows only on rank 0 and groups only on rank 1, step 2 groups vs
groups + TRL rows, step 3 both mixed; with ``spectrum_chunk_size: 2`` the ranks also need
different numbers of chunks. Every rank must still make the same model calls and collectives
(before, this hung: SFTTrainer's loss gathers metrics only where a rank had TRL rows).

The engines take different scoring paths, all compared to one 1-process baseline (prefix sharing
off, no gradient checkpointing), so each path is also checked to be exact:

- DDP: gradient checkpointing + prefix sharing (prompt encode and chunks checkpointed whole);
- FSDP2: prefix sharing, two-pass chunks;
- ZeRO-2: gradient checkpointing, full sequences (chunk checkpoints over checkpointed layers);
- ZeRO-3 (``stage3_param_persistence_threshold: 0``: every parameter partitioned; the adapter's
  line must say ``sharded=True``): prefix sharing; ZeRO-3 cannot recompute a checkpointed chunk,
  so the chunks run without the two-pass recompute, and the trainer says so (before: ``AttributeError:
  'Tensor' object has no attribute 'ds_status'``);
- ZeRO-3 with LoRA and GEM (its own 1-process baseline, LoRA dropout 0): gradient checkpointing +
  prefix sharing, which ZeRO-3 cannot recompute, so full sequences with the layers checkpointed
  (before: ``CheckpointError``), and GEM's K = 1 rows scored on full logits (the chunked GEM head
  reads a partitioned weight).

Each launch has a timeout; on this shared 2-core machine one takes 20-60 s.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectrum_tune.cli import main

from ..launch import DETERMINISTIC, accelerate_launch
from ..toy import save_toy
from .cpu_engines import ENGINE_LINE

ROOT = Path(__file__).parents[2]
CONFIGS = Path(__file__).parent / "accelerate"
RTOL = 1e-5
LAUNCH_TIMEOUT = 300  # s; a launch takes 20-60 s on the shared machine
SEED = 5  # the dataset shuffle that gives the step compositions asserted in test_the_steps_mix_kinds

GROUPS = [
    ("Name a color.", ["red"], None),
    ("Pick a number between 1 and 3.", ["1", "2", "3"], [0.5, 0.3, 0.2]),
    ("Name a color and a number.", ["red 1 2 3 4 5 6 7", "blue 10 9 8 7 6 5 4 3 2 1", "green 3 3 3"], None),
    ("Name a number.", ["10 9 8 7 6 5 4 3 2 1 10 9 8 7"], None),
    ("Pick a number between 4 and 5.", ["4", "5"], [0.9, 0.1]),
    ("Name two colors.", ["red green blue yellow red green", "blue blue"], [0.2, 0.8]),
    ("Pick a color and a number.", ["red 7 green 8 blue 9 yellow 10", "green 1", "blue 2 2 2", "red"], None),
]
TRL_ROWS = [
    ("Name a color.", "blue"),
    ("Name a number.", "7 8 9"),
    ("Pick a color.", "green yellow red"),
    ("Pick a number between 1 and 3.", "2"),
    ("Name two colors.", "red blue green yellow red blue green yellow"),
]

# What differs from the shipped recipes/accelerate/<name>.yaml, and why: CPU processes, 2 of them,
# fp32, and for DeepSpeed a config file (stage3_param_persistence_threshold: 0, so that the tiny
# model's parameters are partitioned at all; accelerate takes the ZeRO keys from that file only).
# (The config file's path is relative: the tests launch from the repository root.)
CPU_KEYS = {"num_processes", "mixed_precision", "use_cpu", "downcast_bf16", "gpu_ids"}
TWINS = {
    "fsdp2.yaml": ("fsdp.yaml", CPU_KEYS),
    "zero2.yaml": ("zero2.yaml", CPU_KEYS | {"deepspeed_config"}),
    "zero3.yaml": ("zero3.yaml", CPU_KEYS | {"deepspeed_config"}),
}


def _write_rows(path: Path) -> None:
    lines = []
    for prompt, references, weights in GROUPS:
        row = {"prompt": [{"role": "user", "content": prompt}], "references": references}
        if weights:
            row["weights"] = weights
        lines.append(row)
    for prompt, answer in TRL_ROWS:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        lines.append({"messages": messages})
    path.write_text("".join(json.dumps(row) + "\n" for row in lines))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("engines")
    save_toy(path / "toy")
    _write_rows(path / "mixed.jsonl")
    return path


def _recipe(workdir: Path, name: str, **extra) -> Path:
    recipe = {
        "model_name_or_path": str(workdir / "toy"),
        "dataset_name": str(workdir / "mixed.jsonl"),
        "output_dir": str(workdir / name),
        **DETERMINISTIC,
        "max_steps": 3,
        "shuffle_dataset": True,
        "seed": SEED,
        "spectrum_prefix_sharing": False,
        "spectrum_chunk_size": 2,
        "save_strategy": "no",
        "per_device_train_batch_size": 4,
        **extra,
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _trajectory(workdir: Path, name: str) -> np.ndarray:
    """``[steps, 2]``: the logged loss and grad norm of every optimizer step."""
    history = json.loads((workdir / name / "training_summary.json").read_text())["log_history"]
    return np.array([[entry["loss"], entry["grad_norm"]] for entry in history if "loss" in entry])


def _one_process(workdir: Path, name: str, **extra) -> np.ndarray:
    assert main(["train", "--config", str(_recipe(workdir, name, **extra))]) == 0
    return _trajectory(workdir, name)


def launch(workdir: Path, name: str, config: Path, **extra) -> tuple[np.ndarray, str]:
    """``accelerate launch`` of ``spectrum-tune train`` on 2 processes (2 rows each per step);
    returns the trajectory and the adapter's engine line."""
    deepspeed = "DEEPSPEED" in config.read_text()
    if deepspeed:  # DeepSpeed's CPU accelerator: not accelerate's CPU mode, gloo for the collectives
        extra = {"use_cpu": False, "ddp_backend": "gloo", **extra}
    recipe = _recipe(workdir, name, **{"per_device_train_batch_size": 2, **extra})
    done = accelerate_launch(
        ["-m", "tests.training.cpu_engines", "train", "--config", str(recipe)],
        config,
        timeout=LAUNCH_TIMEOUT,
        cpu_mode=not deepspeed,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    engine = next((line for line in done.stderr.splitlines() if line.startswith(ENGINE_LINE)), "")
    return _trajectory(workdir, name), engine + "\n" + done.stderr


@pytest.fixture(scope="module")
def baseline(workdir: Path) -> np.ndarray:
    return _one_process(workdir, "one-process")


def test_the_steps_mix_kinds(workdir):
    """The shuffled order hands the ranks different kinds of rows at every step (see the docstring)."""
    from datasets import Dataset

    kinds = ["G"] * len(GROUPS) + ["T"] * len(TRL_ROWS)  # groups first, as SpectrumTrainer joins them
    order = Dataset.from_dict({"i": list(range(len(kinds)))}).shuffle(seed=SEED)["i"]
    steps = [
        tuple("".join(sorted({kinds[i] for i in order[start : start + 2]})) for start in (s, s + 2))
        for s in range(0, 12, 4)
    ]
    assert steps == [("T", "G"), ("G", "GT"), ("GT", "GT")]


def test_test_configs_are_twins_of_the_shipped_ones():
    for test_name, (shipped_name, allowed) in TWINS.items():
        test = yaml.safe_load((CONFIGS / test_name).read_text())
        shipped = yaml.safe_load((ROOT / "recipes" / "accelerate" / shipped_name).read_text())
        differing = {key for key in test.keys() | shipped.keys() if test.get(key) != shipped.get(key)}
        assert differing <= allowed, (test_name, differing - allowed)
        assert test["num_processes"] == 2
    for stage in (2, 3):
        zero = json.loads((CONFIGS / f"zero{stage}.json").read_text())["zero_optimization"]
        assert zero["stage"] == stage
    assert (
        json.loads((CONFIGS / "zero3.json").read_text())["zero_optimization"][
            "stage3_param_persistence_threshold"
        ]
        == 0
    )


# deepspeed is an optional extra (`make install` installs it); without it the ZeRO launches skip.
needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason="deepspeed is not installed (pip install -e '.[deepspeed]')",
)

ENGINES = {
    # name: (accelerate config, recipe keys, the adapter's line)
    "ddp": (
        ROOT / "recipes" / "accelerate" / "cpu-2proc.yaml",
        {"gradient_checkpointing": True, "spectrum_prefix_sharing": True},
        "engine=MULTI_CPU wrapper=DistributedDataParallel",
    ),
    "fsdp2": (CONFIGS / "fsdp2.yaml", {"spectrum_prefix_sharing": True}, "engine=FSDP wrapper=FSDP"),
    "zero2": (
        CONFIGS / "zero2.yaml",
        {"gradient_checkpointing": True},
        "engine=DEEPSPEED wrapper=DeepSpeedEngine sharded=False",
    ),
    "zero3": (
        CONFIGS / "zero3.yaml",
        {"spectrum_prefix_sharing": True},
        "engine=DEEPSPEED wrapper=DeepSpeedEngine sharded=True",
    ),
}


@pytest.mark.parametrize(
    "engine", [pytest.param(name, marks=needs_deepspeed) if "zero" in name else name for name in ENGINES]
)
def test_engine_matches_one_process(workdir, baseline, engine):
    config, extra, expected = ENGINES[engine]
    two, log = launch(workdir, engine, config, **extra)
    assert log.startswith(f"{ENGINE_LINE} {expected}"), log.splitlines()[0]
    if engine == "fsdp2":
        assert "sharded=True" in log.splitlines()[0]
    if engine == "zero3":  # the path it took instead is said, once per process
        assert 1 <= log.count("without the two-pass recompute") <= 2
    assert two.shape == baseline.shape == (3, 2)
    np.testing.assert_allclose(two, baseline, rtol=RTOL)
    assert not np.allclose(baseline[0], baseline[1])


@needs_deepspeed
def test_zero3_lora_gem_matches_one_process(workdir):
    # lora_dropout 0: dropout draws its masks from each rank's own random stream, so with it no
    # 2-process run matches 1 process (measured: 3% on the first step's grad norm, any engine)
    extra = {"use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "spectrum_loss_type": "gem"}
    one = _one_process(workdir, "lora-gem-one", **extra)
    two, log = launch(
        workdir,
        "lora-gem-zero3",
        CONFIGS / "zero3.yaml",
        spectrum_prefix_sharing=True,
        gradient_checkpointing=True,
        **extra,
    )
    assert "sharded=True" in log.splitlines()[0]
    assert "scored on the model's full logits" in log
    assert "prefix sharing off (DeepSpeed ZeRO-3 cannot recompute a checkpointed prompt pass" in log
    assert two.shape == one.shape == (3, 2)
    np.testing.assert_allclose(two, one, rtol=RTOL)
