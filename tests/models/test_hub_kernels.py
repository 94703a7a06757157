"""transformers >= 5.25 kernelizes every ``from_pretrained`` with kernels fetched from the Hub; on
CUDA (kernels-community/rotary for Llama-style models) that load raised on an offline H200
(docs/gpu.md). Importing spectrum_tune turns it off unless the user set USE_HUB_KERNELS."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOAD = """
import os, pathlib, sys
import spectrum_tune  # noqa: F401
from transformers import AutoModelForCausalLM
from tests.toy import save_toy
model = AutoModelForCausalLM.from_pretrained(save_toy(pathlib.Path(sys.argv[1])))
print(os.environ.get("USE_HUB_KERNELS"), model.use_kernels)
"""


@pytest.mark.parametrize(("setting", "expected"), [(None, "NO False"), ("YES", "YES True")])
def test_hub_kernels_are_off_unless_the_user_asks(tmp_path, setting, expected):
    env = {key: value for key, value in os.environ.items() if key != "USE_HUB_KERNELS"}
    if setting is not None:
        env["USE_HUB_KERNELS"] = setting
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(tmp_path / "toy")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    # model.use_kernels is what from_pretrained decided: True means it kernelized the model
    assert result.stdout.strip().splitlines()[-1] == expected
