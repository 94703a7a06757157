"""The served backend over real HTTP: an OpenAI-compatible server process on 127.0.0.1.

The server is :mod:`tests.evaluation.openai_server` (the local backend behind the standard API
shapes), started per module with a timeout and stopped after; vLLM itself is in test_vllm.py.
Its sampler is the local one, so sample mode through the wire must give the very draws the local
backend gives for the same seed: that checks that n, seed, temperature, top-p, max tokens and
stop strings all reach the server and come back in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.runner import EvalOptions, load_for_eval, run_eval
from spectrum_tune.evaluation.sample import sample_task
from spectrum_tune.evaluation.score import score_task
from spectrum_tune.evaluation.served import ServedBackend, ServedOptions, endpoint_host
from spectrum_tune.evaluation.steer import steer_task
from spectrum_tune.evaluation.tasks import Item, Task, load_task

from ..toy import save_toy

pytest.importorskip("openai")
SERVER = Path(__file__).with_name("openai_server.py")
SECRET = "sk-test-never-written-0123456789"


def start_server(model_dir: Path, tmp: Path, *flags: str, timeout: float = 120.0):
    """A fixture server process and its base URL; it stops by itself when idle."""
    port_file = tmp / f"port-{len(list(tmp.glob('port-*')))}"
    process = subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            "--model",
            str(model_dir),
            "--port_file",
            str(port_file),
            "--idle_timeout",
            "300",
            *flags,
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the fixture server did not start (exit {process.poll()})")
        time.sleep(0.2)
    return process, f"http://127.0.0.1:{port_file.read_text()}/v1"


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return save_toy(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def server(toy_dir, tmp_path_factory):
    process, url = start_server(toy_dir, tmp_path_factory.mktemp("server"))
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    """An open chat task and a plain-text task with references (sample and score mode)."""
    root = tmp_path_factory.mktemp("tasks")
    (root / "colors.jsonl").write_text(
        json.dumps(
            {"prompt": [{"role": "user", "content": "Name a color."}], "references": ["red", "green", "blue"]}
        )
        + "\n"
        + json.dumps({"prompt": "Pick a number between 1 and 3:", "references": ["1", "2", "3"]})
        + "\n"
    )
    (root / "colors.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "colors",
                "split": "heldout",
                "kind": "open",
                "items_file": "colors.jsonl",
                "samples": 12,
                "max_new_tokens": 4,
                "stop": ["\n", "."],
            }
        )
    )
    return root / "colors.yaml"


def test_endpoint_host_keeps_only_host_and_port():
    assert endpoint_host("https://user:secret@api.example.com/v1?key=abc") == "api.example.com"
    assert endpoint_host("http://127.0.0.1:8000/v1") == "127.0.0.1:8000"
    with pytest.raises(SpectrumError, match="no host"):
        endpoint_host("http:///v1")


def test_sample_and_score_match_the_local_backend(server, toy_dir, task_file):
    task = load_task(task_file)
    model, tokenizer = load_for_eval(str(toy_dir))
    backend = ServedBackend(ServedOptions(server, "tiny", tokenizer=str(toy_dir), concurrency=3))
    local = sample_task(model, tokenizer, task, seed=4, progress=False, keep_generations=None)
    served = sample_task(backend, None, task, seed=4, progress=False, keep_generations=None)
    for mine, theirs in zip(local, served, strict=True):
        assert theirs["n_generations"] == 12
        assert theirs["generations"] == mine["generations"]  # same draws, same order
        assert theirs["counts"] == mine["counts"]
    # n split over requests of 5: each request is seeded on its own, so only the first 5 match
    # the local sampler's (in batches of 5: a draw depends on the batch's shape)
    split = ServedBackend(ServedOptions(server, "tiny", n_per_request=5))
    pieces = sample_task(split, None, task, seed=4, progress=False, keep_generations=None)
    local = sample_task(model, tokenizer, task, seed=4, batch_size=5, progress=False, keep_generations=None)
    for mine, theirs in zip(local, pieces, strict=True):
        assert theirs["n_generations"] == 12 and theirs["generations"][:5] == mine["generations"][:5]
    local_scores = score_task(model, tokenizer, task)
    served_scores = score_task(backend, None, task)
    for mine, theirs in zip(local_scores, served_scores, strict=True):
        np.testing.assert_allclose(theirs["logprobs"], mine["logprobs"], atol=1e-4)
    assert backend.describe()["score"].startswith("exact")
    # steer tasks are scored through the same interface
    steer = Task(
        "steer",
        "steer",
        "heldout",
        "steer",
        None,
        [
            Item(
                "x",
                description="Names of colors.",
                examples=["red", "blue", "red"],
                heldout=["red", "blue"],
                k=[0, 2],
            )
        ],
    )
    (mine,) = steer_task(model, tokenizer, steer)
    (theirs,) = steer_task(backend, None, steer)
    for k in ("0", "2"):
        np.testing.assert_allclose(theirs["nll"][k], mine["nll"][k], atol=1e-4)


def test_hosted_style_server_is_refused_in_one_line(server, toy_dir, task_file, tmp_path):
    url = server
    # the fixture's "tiny-hosted" answers like a hosted chat API: no prompt log-probs
    served = ServedOptions(url, "tiny-hosted", tokenizer=str(toy_dir))
    with pytest.raises(SpectrumError, match=r"gives no prompt log-probs.*does not approximate") as caught:
        run_eval(
            EvalOptions(
                model="tiny",
                tasks=[str(task_file)],
                out=tmp_path / "score",
                mode="score",
                served=served,
                progress=False,
            )
        )
    assert "\n" not in str(caught.value)
    results = run_eval(
        EvalOptions(
            model="tiny",
            tasks=[str(task_file)],
            out=tmp_path / "both",
            mode="both",
            samples=3,
            served=served,
            progress=False,
        )
    )
    task = results["tasks"]["colors"]
    assert task["status"] == "ok" and set(task["metrics"]) == {"sample"}
    assert results["backend"]["score"].startswith("refused: 127.0.0.1")
    no_tokenizer = ServedBackend(ServedOptions(url, "tiny"))
    assert "needs --tokenizer" in no_tokenizer.score_refusal()
    with pytest.raises(SpectrumError, match="does not serve 'other'"):
        ServedBackend(ServedOptions(url, "other"))


def _fixture(url: str, route: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url.replace("/v1", f"/fixture/{route}"), data=data, headers={"Content-Length": str(len(data or b""))}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_retries_cache_and_no_secret_in_outputs(server, toy_dir, task_file, tmp_path, monkeypatch):
    """429s are retried; a second run of the same command is answered from the on-disk cache
    (no request reaches the server); the API key is nowhere in what the run writes."""
    url = server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    before = _fixture(url, "stats")
    _fixture(url, "fail_next", {"count": 2})
    served = ServedOptions(url, "tiny", tokenizer=str(toy_dir), n_per_request=4)
    options = EvalOptions(
        model="tiny", tasks=[str(task_file)], out=tmp_path / "run", mode="both", served=served, progress=False
    )
    first = run_eval(options)
    after_first = _fixture(url, "stats")
    assert after_first["rate_limited"] - before["rate_limited"] == 2  # the client retried them
    again = run_eval(options)
    assert _fixture(url, "stats")["generation_requests"] == after_first["generation_requests"]
    assert again["tasks"]["colors"]["items"] == first["tasks"]["colors"]["items"]
    backend = first["backend"]
    assert backend["host"] == url.split("/")[2] and backend["model"] == "tiny"
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert SECRET.encode() not in text, path


def test_cli_eval_served_and_compare_with_local(server, toy_dir, task_file, tmp_path, capsys):
    from spectrum_tune.cli import main

    assert (
        main(
            [
                "eval",
                "--model",
                str(toy_dir),
                "--tasks",
                str(task_file),
                "--samples",
                "6",
                "--no_progress",
                "--out",
                str(tmp_path / "local"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "--endpoint",
                server,
                "--served-model",
                "tiny",
                "--tokenizer",
                str(toy_dir),
                "--tasks",
                str(task_file),
                "--samples",
                "6",
                "--no_progress",
                "--out",
                str(tmp_path / "served"),
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "served" / "results.json").read_text())
    assert results["model"] == "tiny" and results["backend"]["kind"] == "served"
    assert results["tasks"]["colors"]["stop"] == ["\n", "."]
    assert (
        main(
            [
                "compare",
                str(tmp_path / "local"),
                str(tmp_path / "served"),
                "--labels",
                "local",
                "served",
                "--out",
                str(tmp_path / "cmp"),
            ]
        )
        == 0
    )
    payload = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [run["backend"]["kind"] for run in payload["runs"]] == ["local", "served"]
    assert "served by 127.0.0.1:" in (tmp_path / "cmp" / "report.md").read_text()
    assert payload["homogeneity"]["summary"]["homogeneity"] == pytest.approx(1.0)  # same model, same draws
    assert (
        main(
            [
                "eval",
                "--endpoint",
                server,
                "--served-model",
                "tiny",
                "--model",
                "x",
                "--tasks",
                "t",
                "--out",
                "o",
            ]
        )
        == 2
    )
    assert "leave out --model" in capsys.readouterr().err
    assert os.environ.get("OPENAI_API_KEY") != SECRET


def test_published_results_name_a_local_tokenizer_by_its_folder_only():
    from spectrum_tune.hub.publish import public_results

    backend = {"kind": "served", "host": "127.0.0.1:8000", "tokenizer": "/home/me/models/qwen-1.5b"}
    results = {"model": "qwen", "tasks": {}, "backend": backend}
    assert public_results(results, None, None)["backend"]["tokenizer"] == "qwen-1.5b"
