"""The served backend against a real vLLM server (CPU build, its own environment), on the tiny model.

vLLM needs transformers < 5.20 while this project needs >= 5.24, so it lives in its own virtual
environment (``make vllm-venv``: ``.vllm-venv``, or ``$SPECTRUM_VLLM_PYTHON``) and runs as a
server process on 127.0.0.1, started here with a timeout and stopped after. Score mode must give
the local backend's log-probs (float32 on both sides); sample mode must draw from the same
distribution (vLLM's random numbers are its own, so the counts are compared with a chi-square
test of homogeneity, not for equality). vLLM's CPU build kills its engine on a seeded request
("CPU Generator does not use offset"), so these requests send no seed.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from spectrum_tune.evaluation.local import LocalBackend
from spectrum_tune.evaluation.runner import load_for_eval
from spectrum_tune.evaluation.sample import sample_task
from spectrum_tune.evaluation.score import score_task
from spectrum_tune.evaluation.served import ServedBackend, ServedOptions
from spectrum_tune.evaluation.tasks import load_task

from ..launch import free_port

pytestmark = pytest.mark.vllm
pytest.importorskip("openai")
REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = Path(os.environ.get("SPECTRUM_VLLM_PYTHON") or REPO / ".vllm-venv" / "bin" / "python")
START_TIMEOUT = 900  # seconds; measured here: 88 s on a quiet machine, 266 s with 8 jobs on 2 cores


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    if not VLLM_PYTHON.exists():
        pytest.skip(f"no vLLM environment at {VLLM_PYTHON} (make vllm-venv)")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            # `timeout`: the server stops by itself even if this process is killed
            [
                "timeout",
                "1800",
                str(VLLM_PYTHON),
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                str(tiny_model_dir),
                "--served-model-name",
                "tiny",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dtype",
                "float32",
                "--max-model-len",
                "512",
                "--enforce-eager",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"vLLM did not start (exit {process.poll()}):\n{tail}")
            time.sleep(2)
        yield f"{url}/v1"
    finally:
        os.killpg(process.pid, 15)  # its own session: the server and its engine process
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


@pytest.fixture(scope="module")
def backends(vllm_server, tiny_model_dir):
    model, tokenizer = load_for_eval(str(tiny_model_dir))
    served = ServedBackend(ServedOptions(vllm_server, "tiny", tokenizer=str(tiny_model_dir), seed=False))
    return LocalBackend(model, tokenizer), served


def test_vllm_score_mode_matches_local_log_probs(backends):
    local, served = backends
    assert served.is_vllm and served.describe()["server_version"]
    worst = 0.0
    for path in ("eval/spread/names_colors.yaml", "eval/distribution/dice_heldout.yaml"):
        task = load_task(REPO / path)
        task.items = task.items[:3]
        for mine, theirs in zip(score_task(local, None, task), score_task(served, None, task), strict=True):
            if mine is not None:
                worst = max(worst, float(np.max(np.abs(np.subtract(mine["logprobs"], theirs["logprobs"])))))
    assert worst < 1e-3, worst


def test_vllm_sample_mode_draws_the_local_distribution(backends):
    from scipy.stats import chi2_contingency

    local, served = backends
    task = load_task(REPO / "eval/spread/names_colors.yaml")
    task.items = task.items[:1]
    n = 400
    (mine,) = sample_task(local, None, task, samples=n, progress=False)
    (theirs,) = sample_task(served, None, task, samples=n, progress=False)
    assert theirs["n_generations"] == n
    answers = [a for a in mine["counts"] if mine["counts"][a] >= 10]  # the rest pooled as "other"
    table = np.array(
        [
            [c.get(a, 0) for a in answers] + [n - sum(c.get(a, 0) for a in answers)]
            for c in (mine["counts"], theirs["counts"])
        ]
    )
    table = table[:, table.sum(0) > 0]
    assert chi2_contingency(table).pvalue > 1e-3, table
