"""The README's Python example runs as written, offline, on the tiny model."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_python_block() -> str:
    """The first ```python block under the README's "### Python" heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README has no Python block under '### Python'"
    return match.group(1)


def test_readme_python_example_runs(tiny_model_dir, tmp_path, monkeypatch):
    code = readme_python_block()
    assert '"spectrum-tune/tiny"' in code  # the example must stay offline
    # run it exactly as written, from a directory where data/ is the repo's data
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own code
    trainer = namespace["trainer"]
    assert trainer.state.global_step == trainer.args.max_steps
    assert trainer.data_collator.prefix_sharing  # fast path on, as in the recipes
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert (tmp_path / "runs/python-example/adapter_model.safetensors").is_file()
