"""Sharing a run on the Hub: staging, the model card, and pushes with the real huggingface_hub client.

Pushes run ``python -m spectrum_tune.cli push`` in a subprocess with ``HF_ENDPOINT`` pointing at a
local stand-in for the Hub API (huggingface_hub reads ``HF_ENDPOINT`` once, at import, so a fresh
process is the faithful way to redirect it). The stand-in answers the endpoints the client calls
for ``create_repo`` / ``create_branch`` / ``upload_folder`` and records every request.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, metadata_load

from spectrum_tune.cli import main
from spectrum_tune.errors import SpectrumError
from spectrum_tune.hub import build_card, flatten_metrics, push_run, stage_upload

from ..toy import save_toy

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_spectrumTuneTestToken4f9c2e7a1b"
REPO = "me/toy-spectrum"
ADAPTER_UPLOAD = {
    "README.md", "adapter_config.json", "adapter_model.safetensors", "spectrum_recipe.yaml",
    "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
}  # fmt: skip
EVAL_UPLOAD = {"eval/results.json", "eval/report.md"}
WATCHDOG_SECONDS = 60


# --------------------------------------------------------------------------------------------
# A local stand-in for the Hub API
# --------------------------------------------------------------------------------------------


@dataclass
class FakeHub:
    """Repos, branches and committed files, plus every request the client made."""

    endpoint: str = ""
    fail_status: int | None = None  # answer every API call with this status (401/403 tests)
    requests: list[dict[str, Any]] = field(default_factory=list)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    def calls(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a stuck client cannot hold a server thread forever

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path).path.strip("/").split("/")
            # /api/models/{owner}/{name}/{action}/{revision}
            kind = parts[4] if parts[:2] == ["api", "models"] and len(parts) > 4 else "/".join(parts[:3])
            record = {"kind": kind, "method": method, "path": self.path, "body": body,
                      "authorization": self.headers.get("Authorization")}  # fmt: skip
            hub.requests.append(record)
            if kind == "api/agent-harnesses":  # huggingface_hub's best-effort telemetry lookup
                return self._reply(404, {"error": "not here"})
            if hub.fail_status is not None:
                return self._reply(hub.fail_status, {"error": "Invalid credentials in Authorization header"})
            if record["authorization"] != f"Bearer {TOKEN}":
                return self._reply(401, {"error": "Invalid credentials in Authorization header"})
            if kind == "api/validate-yaml":  # upload_folder checks README.md metadata first
                try:
                    ModelCard(json.loads(body)["content"])
                except ValueError as error:
                    return self._reply(400, {"errors": [{"message": str(error)}]})
                return self._reply(200, {"errors": [], "warnings": []})
            repo = "/".join(parts[2:4])
            if kind == "api/repos/create":  # create_repo
                payload = json.loads(body)
                repo = f"{payload['organization']}/{payload['name']}"
                url = f"{hub.endpoint}/{repo}"
                if repo in hub.repos:
                    return self._reply(409, {"error": "You already created this model repo", "url": url})
                hub.repos[repo] = {"payload": payload, "branches": {"main"}, "files": {}}
                return self._reply(200, {"url": url, "name": repo})
            if repo not in hub.repos:
                return self._reply(404, {"error": "Repository not found"})
            if kind == "branch":  # create_branch
                branch = parts[5]
                if branch in hub.repos[repo]["branches"]:
                    return self._reply(409, {"error": "Reference already exists"})
                hub.repos[repo]["branches"].add(branch)
                return self._reply(200, {})
            if kind == "preupload":  # upload modes: "regular" makes the client inline every file
                files = json.loads(body)["files"]
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._reply(200, {"files": modes})
            if kind == "commit":  # NDJSON: a header line, then one line per file (base64 content)
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                if lines[0]["key"] != "header" or any(line["key"] != "file" for line in lines[1:]):
                    return self._reply(400, {"error": f"unexpected operations {[x['key'] for x in lines]}"})
                files = {x["value"]["path"]: base64.b64decode(x["value"]["content"]) for x in lines[1:]}
                revision = parts[5]
                hub.repos[repo]["files"].update(files)
                oid = f"{len(hub.commits) + 1:040x}"
                hub.commits.append({"repo": repo, "revision": revision, "header": lines[0]["value"],
                                    "files": files})  # fmt: skip
                url = f"{hub.endpoint}/{repo}/commit/{oid}"
                return self._reply(200, {"commitUrl": url, "commitOid": oid})
            return self._reply(404, {"error": f"no route {method} {self.path}"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@contextmanager
def fake_hub(fail_status: int | None = None) -> Iterator[FakeHub]:
    """Serve a FakeHub on 127.0.0.1; it shuts itself down after WATCHDOG_SECONDS at the latest."""
    hub = FakeHub(fail_status=fail_status)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.endpoint = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(WATCHDOG_SECONDS, server.shutdown)
    thread.start()
    watchdog.start()
    try:
        yield hub
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _push(argv: list[str], endpoint: str, hf_home: Path, token: str | None = TOKEN):
    """Run ``spectrum-tune push`` in a fresh process that talks to ``endpoint``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "HUGGING_FACE_HUB_TOKEN"}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),  # no cached login from the machine running the tests
        HF_HUB_VERBOSITY="debug",  # log as much as possible: the token must be in none of it
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
        OMP_NUM_THREADS="1",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "spectrum_tune.cli", "push", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WATCHDOG_SECONDS,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Fixtures: a run trained from the toy model, an eval results.json
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A 1-step LoRA run on the toy model whose recipe carried a hub_token."""
    tmp = tmp_path_factory.mktemp("hubrun")
    toy = save_toy(tmp / "toy")
    (toy / "README.md").write_text("---\nlicense: mit\n---\n# toy base\n")
    data = tmp / "train.jsonl"
    rows = [
        {"prompt": [{"role": "user", "content": "Name a color."}], "references": ["red", "blue"]},
        {"prompt": [{"role": "user", "content": "Pick a number between 1 and 3."}],
         "references": ["1", "2", "3"], "weights": [0.5, 0.3, 0.2]},
        {"prompt": [{"role": "user", "content": "Pick a number between 4 and 5."}], "references": ["5"]},
    ]  # fmt: skip
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = {
        "model_name_or_path": str(toy), "dataset_name": str(data), "output_dir": str(tmp / "run"),
        "max_steps": 1, "per_device_train_batch_size": 3, "learning_rate": 1e-2, "use_peft": True,
        "lora_target_modules": "all-linear", "gradient_checkpointing": False, "save_strategy": "no",
        "report_to": "none", "logging_steps": 1, "spectrum_beta": 0.5, "hub_token": TOKEN,
    }  # fmt: skip
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(tmp / "recipe.yaml")]) == 0
    # train keeps the token out of every file it writes ...
    for path in (tmp / "run").rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path
    # ... but a run dir made by other tools may hold one (Trainer pickles hub_token into
    # training_args.bin): arm that trap, so the tests below check the upload allow-list keeps it out.
    args_file = tmp / "run" / "training_args.bin"
    args_file.write_bytes(args_file.read_bytes() + TOKEN.encode())
    return tmp / "run"


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory) -> Path:
    """A results.json in the harness's schema: namespaced metrics, CIs, nulls, a failed task."""
    out = tmp_path_factory.mktemp("eval")
    results = {
        "schema_version": 1, "model": "toy", "adapter": "run", "mode": "both", "seed": 0, "samples": 20,
        "tasks": {
            "pick_number": {
                "suite": "spread", "split": "heldout", "kind": "open", "status": "ok", "n_items": 2,
                "metrics": {
                    "sample": {"coverage": 0.5, "js": 0.1234567, "js_ci_low": 0.1, "js_ci_high": 0.15,
                               "entropy": None, "note": "text"},
                    "score": {"valid_mass": 0.8, "published": True},
                },
                "items": [],
            },
            "name_color": {
                "suite": "spread", "split": "tuned", "kind": "open", "status": "ok", "n_items": 1,
                "metrics": {"sample": {"coverage": 0.75}}, "items": [],
            },
            "capital": {
                "suite": "accuracy", "split": "heldout", "kind": "closed", "status": "ok", "n_items": 1,
                "metrics": {"sample": {"accuracy": 0.9}, "steer": {"incontext_nll@4": 2.5}}, "items": [],
            },
            "broken": {"suite": "spread", "split": "heldout", "kind": "open", "status": "failed",
                       "error": "RuntimeError: boom\ntraceback...", "metrics": {}, "items": []},
        },
        "summary": {"overall": {"n_tasks": 4, "n_failed": 1}},
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(results))
    (out / "report.md").write_text("# spectrum-tune eval report\n")
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


# --------------------------------------------------------------------------------------------
# Pushing
# --------------------------------------------------------------------------------------------


def test_push_uploads_adapter_card_and_recipe_only(run_dir, eval_dir, tmp_path):
    before = _snapshot(run_dir)
    argv = [str(run_dir), "--repo-id", REPO, "--private", "--revision", "dev", "--eval", str(eval_dir),
            "--commit-message", "first upload"]  # fmt: skip
    with fake_hub() as hub:
        first = _push(argv, hub.endpoint, tmp_path / "hf")
        again = _push(argv, hub.endpoint, tmp_path / "hf")  # a retry is safe: same repo, same files
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert f"{hub.endpoint}/{REPO}/commit/" in first.stdout

    create = json.loads(hub.calls("api/repos/create")[0]["body"])
    assert create == {"name": "toy-spectrum", "organization": "me", "visibility": "private", "type": "model"}
    assert hub.repos[REPO]["branches"] == {"main", "dev"}
    assert [c["revision"] for c in hub.commits] == ["dev", "dev"]
    assert hub.commits[0]["header"]["summary"] == "first upload"
    uploaded = hub.commits[0]["files"]
    assert set(uploaded) == ADAPTER_UPLOAD | EVAL_UPLOAD  # no base weights, no training_args.bin
    assert hub.commits[1]["files"] == uploaded
    assert uploaded["adapter_model.safetensors"] == before["adapter_model.safetensors"]

    card_path = tmp_path / "README.md"
    card_path.write_bytes(uploaded["README.md"])
    card = ModelCard.load(card_path)
    assert card.data.library_name == "peft" and card.data.license == "mit"
    assert {(r.dataset_name, r.metric_type, r.metric_value) for r in card.data.eval_results} >= {
        ("pick_number", "sample/js", 0.1235),
        ("capital", "steer/incontext_nll@4", 2.5),
    }
    assert metadata_load(card_path)["model-index"][0]["name"] == "toy-spectrum"

    # The token authenticated every API call, and appears in no uploaded byte and no output line.
    api_calls = [r for r in hub.requests if r["kind"] != "api/agent-harnesses"]
    assert api_calls and all(r["authorization"] == f"Bearer {TOKEN}" for r in api_calls)
    for name, content in uploaded.items():
        assert TOKEN.encode() not in content, name
    for proc in (first, again):
        assert TOKEN not in proc.stdout + proc.stderr
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no token", "no Hugging Face token"),
        (401, "authentication failed"),
        (403, "authentication failed"),
        ("server down", "cannot reach the Hugging Face Hub"),
        ("invalid repo id", "invalid repo id 'me/bad..name'"),
    ],
)
def test_push_failures_are_one_line_and_leave_the_run_alone(run_dir, tmp_path, case, expected):
    before = _snapshot(run_dir)
    repo = "me/bad..name" if case == "invalid repo id" else REPO
    with fake_hub(fail_status=case if isinstance(case, int) else None) as hub:
        endpoint = hub.endpoint
        if case == "server down":
            with socket.socket() as free:  # a port nobody listens on: connection refused
                free.bind(("127.0.0.1", 0))
                endpoint = f"http://127.0.0.1:{free.getsockname()[1]}"
        proc = _push([str(run_dir), "--repo-id", repo], endpoint, tmp_path / "hf",
                     token=None if case == "no token" else TOKEN)  # fmt: skip
    line = _one_line_error(proc)
    assert expected in line, line
    assert TOKEN not in proc.stdout + proc.stderr
    assert not hub.commits
    if case in ("no token", "invalid repo id"):  # refused before any request
        assert not [r for r in hub.requests if r["kind"] != "api/agent-harnesses"]
    assert _snapshot(run_dir) == before


def test_push_needs_a_run_with_an_adapter(run_dir, tmp_path):
    with pytest.raises(SpectrumError, match="does not exist"):
        push_run(tmp_path / "missing", REPO, token=TOKEN)
    broken = _copy_run(run_dir, tmp_path)
    (broken / "adapter_model.safetensors").unlink()
    before = _snapshot(broken)
    with pytest.raises(SpectrumError, match=r"no adapter_model\.safetensors"):
        push_run(broken, REPO, token=TOKEN)
    (broken / "adapter_config.json").unlink()
    with pytest.raises(SpectrumError, match="holds no adapter"):
        push_run(broken, REPO, dry_run=True)
    assert _snapshot(broken) == {k: v for k, v in before.items() if k != "adapter_config.json"}


# --------------------------------------------------------------------------------------------
# Dry run, staging and the card
# --------------------------------------------------------------------------------------------


def test_dry_run_stages_the_upload_with_a_complete_card(run_dir, eval_dir, capsys):
    before = _snapshot(run_dir)
    assert main(["push", str(run_dir), "--repo-id", REPO, "--eval", str(eval_dir), "--dry-run"]) == 0
    staging = run_dir.parent / "run-hub-staging"  # the default: beside the run, never inside it
    out = capsys.readouterr().out
    assert f"staged 9 files for {REPO} in {staging}" in out and "adapter_model.safetensors" in out
    assert set(_snapshot(staging)) == ADAPTER_UPLOAD | EVAL_UPLOAD
    assert _snapshot(run_dir) == before

    card = ModelCard.load(staging / "README.md")
    assert card.data.tags == ["spectrum-tune", "trl", "lora"]
    assert card.data.base_model is None  # a local base is no Hub id; the text names it instead
    results = {(r.dataset_type, r.dataset_name, r.dataset_split, r.metric_type): r.metric_value
               for r in card.data.eval_results}  # fmt: skip
    assert results == {
        ("spectrum-tune/spread", "pick_number", "heldout", "sample/coverage"): 0.5,
        ("spectrum-tune/spread", "pick_number", "heldout", "sample/js"): 0.1235,
        ("spectrum-tune/spread", "pick_number", "heldout", "score/valid_mass"): 0.8,
        ("spectrum-tune/spread", "name_color", "tuned", "sample/coverage"): 0.75,
        ("spectrum-tune/accuracy", "capital", "heldout", "sample/accuracy"): 0.9,
        ("spectrum-tune/accuracy", "capital", "heldout", "steer/incontext_nll@4"): 2.5,
    }  # no CI bounds, nulls, strings, booleans or failed tasks as metrics
    text = card.text
    assert "L = α·(−logsumexp s) + β·KL(w‖softmax s)" in text and "**β = 0.5**" in text
    assert "groups (contexts): 3, of which multi-reference: 2; mean references per group: 2" in text
    assert f'PeftModel.from_pretrained(base, "{REPO}")' in text
    assert "| pick_number | spread | heldout | sample/js | 0.1235 [0.1, 0.15] |" in text
    assert "`broken` failed: RuntimeError: boom" in text
    recipe_block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    staged_recipe = yaml.safe_load((staging / "spectrum_recipe.yaml").read_text())
    assert yaml.safe_load(recipe_block) == staged_recipe  # the full resolved recipe, as uploaded
    assert (staged_recipe["lora_r"], staged_recipe["lora_alpha"]) == (16, 32)  # defaults included
    assert staged_recipe["dataset_name"] == "train.jsonl"
    assert "`dataset_name: train.jsonl`: not uploaded" in text

    # Re-staging replaces the earlier staging; a folder that is not one is refused.
    assert main(["push", str(run_dir), "--repo-id", REPO, "--dry-run", "--out", str(staging)]) == 0
    assert set(_snapshot(staging)) == ADAPTER_UPLOAD
    foreign = run_dir.parent / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SpectrumError, match="not an earlier staging"):
        stage_upload(run_dir, foreign)
    with pytest.raises(SpectrumError, match="outside the run directory"):
        stage_upload(run_dir, run_dir / "staging")
    assert (foreign / "notes.txt").read_text() == "mine" and _snapshot(run_dir) == before


def test_staging_refuses_files_that_contain_the_token(run_dir, tmp_path):
    run = _copy_run(run_dir, tmp_path)
    config = run / "tokenizer_config.json"
    config.write_text(config.read_text().replace("{", f'{{"auth": "{TOKEN}",', 1))
    with pytest.raises(SpectrumError, match="contains your Hub token") as caught:
        stage_upload(run, tmp_path / "out", token=TOKEN)
    assert TOKEN not in str(caught.value)
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_card_metadata_for_qlora_and_hub_base(run_dir, tmp_path):
    run = _copy_run(run_dir, tmp_path)
    summary = json.loads((run / "training_summary.json").read_text())
    (run / "training_summary.json").write_text(json.dumps({**summary, "load_in_4bit": True}))
    recipe = yaml.safe_load((run / "spectrum_recipe.yaml").read_text())
    recipe.update(model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct", hub_token=TOKEN)  # a hand-edited recipe
    (run / "spectrum_recipe.yaml").write_text(yaml.safe_dump(recipe))
    card = build_card(run, repo_id=REPO, license="apache-2.0")
    assert card.data.tags == ["spectrum-tune", "trl", "lora", "qlora"]
    assert card.data.base_model == "Qwen/Qwen2.5-0.5B-Instruct" and card.data.license == "apache-2.0"
    assert card.data.eval_results is None and "## Evaluation" not in card.text
    assert 'from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")' in card.text and "QLoRA" in card.text
    files = stage_upload(run, tmp_path / "out", repo_id=REPO)
    assert TOKEN not in (tmp_path / "out" / "spectrum_recipe.yaml").read_text() + str(card)
    assert "eval/results.json" not in files


def test_full_fine_tune_stages_its_model_files(tmp_path):
    run = tmp_path / "full"
    run.mkdir()
    for name in ("config.json", "generation_config.json", "tokenizer.json"):
        (run / name).write_text("{}")
    (run / "model.safetensors").write_bytes(b"weights")
    (run / "training_args.bin").write_bytes(b"pickle")
    (run / "spectrum_recipe.yaml").write_text("model_name_or_path: Qwen/Qwen2.5-1.5B-Instruct\n")
    files = stage_upload(run, tmp_path / "out", repo_id=REPO)
    assert files == ["README.md", "config.json", "generation_config.json", "model.safetensors",
                     "spectrum_recipe.yaml", "tokenizer.json"]  # fmt: skip
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.library_name == "transformers" and "lora" not in card.data.tags
    with pytest.raises(SpectrumError, match="--merged needs a LoRA adapter run"):
        stage_upload(run, tmp_path / "merged", merged=True)


def test_merged_stages_a_full_model_equal_to_base_plus_adapter(run_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    files = stage_upload(run_dir, tmp_path / "merged", merged=True, repo_id=REPO)
    assert "model.safetensors" in files and "config.json" in files
    assert not {"adapter_model.safetensors", "adapter_config.json"} & set(files)
    base_path = yaml.safe_load((run_dir / "spectrum_recipe.yaml").read_text())["model_name_or_path"]
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), run_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    ids = torch.tensor([[1, 5, 9, 12, 20]])
    base = AutoModelForCausalLM.from_pretrained(base_path).eval()  # PeftModel wrapped the first copy
    with torch.no_grad():
        assert torch.allclose(reference(ids).logits, merged(ids).logits, atol=1e-5)
        assert not torch.allclose(base(ids).logits, merged(ids).logits, atol=1e-5)  # the LoRA is in there
    assert ModelCard.load(tmp_path / "merged" / "README.md").data.library_name == "transformers"


def test_flatten_metrics_walks_nested_namespaces():
    metrics = {"sample": {"js": 0.1, "js_ci_low": 0.05, "inner": {"x": 1}, "n": None, "s": "a", "b": True},
               "top": 2, "nan": float("nan")}  # fmt: skip
    assert flatten_metrics(metrics) == {"sample/js": 0.1, "sample/js_ci_low": 0.05, "sample/inner/x": 1.0,
                                        "top": 2.0}  # fmt: skip


# --------------------------------------------------------------------------------------------
# A publishable card: no local paths, the base's Hub id and license, usage that runs elsewhere
# --------------------------------------------------------------------------------------------


def test_staged_folder_names_no_local_path(run_dir, tmp_path):
    assert not (run_dir / "README.md").exists()  # PEFT's card (with the base's local path) is dropped
    run = _copy_run(run_dir, tmp_path)
    recipe = yaml.safe_load((run / "spectrum_recipe.yaml").read_text())
    eval_out = tmp_path / "eval"
    eval_out.mkdir()
    task = {
        "suite": "spread",
        "split": "heldout",
        "kind": "open",
        "status": "failed",
        "n_items": 0,
        "path": str(ROOT / "eval/spread/numbers.yaml"),
        "error": "RuntimeError: boom",
        "traceback": f'File "{sys.prefix}/lib/x.py", line 1',
        "metrics": {},
        "items": [],
    }
    results = {
        "schema_version": 1,
        "model": recipe["model_name_or_path"],
        "adapter": str(run),
        "mode": "both",
        "tasks": {"numbers": task},
        "summary": {},
    }
    (eval_out / "results.json").write_text(json.dumps(results))
    out = tmp_path / "staged"
    stage_upload(run, out, eval_dir=eval_out, repo_id=REPO)
    needles = [str(tmp_path), str(run_dir.parent), sys.prefix, str(ROOT)]
    for path in out.rglob("*"):
        data = path.read_bytes() if path.is_file() else b""
        assert not [n for n in needles if n.encode() in data], path
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "toy"
    staged = json.loads((out / "eval/results.json").read_text())
    assert staged["tasks"]["numbers"]["path"] == "spread/numbers.yaml" and staged["adapter"] == REPO
    # the last line of defence: a local path that slipped into a copied file stops the upload
    config = run / "tokenizer_config.json"
    config.write_text(config.read_text().replace("{", f'{{"origin": "{run}",', 1))
    with pytest.raises(SpectrumError, match="contains the local path"):
        stage_upload(run, tmp_path / "again", repo_id=REPO)


def test_card_of_an_alias_base_names_its_hub_model_and_license(run_dir, tmp_path):
    run = _copy_run(run_dir, tmp_path)
    recipe = yaml.safe_load((run / "spectrum_recipe.yaml").read_text())
    recipe.update(
        model_name_or_path="spectrum-tune/smollm2",
        model_init_kwargs={"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    )
    (run / "spectrum_recipe.yaml").write_text(yaml.safe_dump(recipe))
    card = build_card(run, repo_id=REPO)
    hub = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.data.base_model == hub and card.data.license == "apache-2.0"
    assert f'base = AutoModelForCausalLM.from_pretrained("{hub}")' in card.text
    assert "spectrum-tune/smollm2" not in card.text and "dequantized GGUF file" in card.text
    out = tmp_path / "staged"
    stage_upload(run, out, repo_id=REPO)
    staged = yaml.safe_load((out / "spectrum_recipe.yaml").read_text())
    assert staged["model_name_or_path"] == hub and not staged.get("model_init_kwargs")
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == hub
    recipe["model_name_or_path"] = "spectrum-tune/tiny"
    (run / "spectrum_recipe.yaml").write_text(yaml.safe_dump(recipe))
    card = build_card(run, repo_id=REPO, license="mit")
    assert card.data.base_model is None and card.data.license == "mit"  # the user's license wins
    assert "base = AutoModelForCausalLM.from_pretrained(tiny_model_path())" in card.text
    assert "from spectrum_tune.world import tiny_model_path" in card.text
