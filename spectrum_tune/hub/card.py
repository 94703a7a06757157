"""The model card: eval metrics as model-index entries and a table, usage, method, versions."""

from __future__ import annotations

import math
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..models import TINY_ALIAS
from ..training.train import RECIPE_FILE
from .publish import public_base, public_recipe
from .run_dir import (
    BASE_TAGS,
    CI_SUFFIXES,
    EVAL_DIR_IN_REPO,
    TOKENIZER_FILES,
    Run,
    base_license,
    hub_id,
    read_run,
)


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics as ``{"sample/js": 0.12, ...}``; non-numeric and undefined values dropped."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = float(value)
    return flat


def _metrics_with_intervals(metrics: dict[str, Any]) -> dict[str, tuple[float, float | None, float | None]]:
    """Flattened metrics with their ``_ci_low``/``_ci_high`` bounds folded in as (value, low, high)."""
    flat = flatten_metrics(metrics)
    return {
        name: (value, flat.get(f"{name}_ci_low"), flat.get(f"{name}_ci_high"))
        for name, value in flat.items()
        if not name.endswith(CI_SUFFIXES)
    }


def _number(value: float) -> float:
    """Four significant digits: enough to compare, short enough to read in YAML."""
    return float(f"{value:.4g}")


def _fmt(value: float, low: float | None = None, high: float | None = None) -> str:
    text = f"{value:.4g}"
    return f"{text} [{low:.4g}, {high:.4g}]" if low is not None and high is not None else text


def eval_results(results: dict[str, Any]) -> list[Any]:
    """One ``huggingface_hub.EvalResult`` per (ok task, metric) of a results.json.

    The suite is the dataset (``spectrum-tune/<suite>``) and the task its config, so tasks of one
    suite stay separate entries in the model-index (the Hub groups results by dataset + config).
    """
    from huggingface_hub import EvalResult

    entries = []
    for task_name, task in results.get("tasks", {}).items():
        if task.get("status") != "ok":
            continue
        for metric, (value, _, _) in _metrics_with_intervals(task.get("metrics", {})).items():
            entries.append(
                EvalResult(
                    task_type="text-generation",
                    dataset_type=f"spectrum-tune/{task.get('suite', 'custom')}",
                    dataset_name=task_name,
                    dataset_config=task_name,
                    dataset_split=task.get("split"),
                    metric_type=metric,
                    metric_value=_number(value),
                )
            )
    return entries


def _eval_markdown(results: dict[str, Any]) -> str:
    """The eval section of the card: one row per task and metric, CIs in brackets."""
    rows = ["| task | suite | split | metric | value |", "|---|---|---|---|---|"]
    failed = []
    for task_name, task in results.get("tasks", {}).items():
        if task.get("status") != "ok":
            reason = str(task.get("error") or "unknown error").splitlines()[0]
            failed.append(f"- `{task_name}` failed: {reason}")
            continue
        for metric, interval in _metrics_with_intervals(task.get("metrics", {})).items():
            rows.append(
                f"| {task_name} | {task.get('suite', '')} | {task.get('split', '')} | {metric} | "
                f"{_fmt(*interval)} |"
            )
    samples = results.get("samples") or "task default"
    lines = [
        f"Measured with `spectrum-tune eval` (mode: {results.get('mode')}, seed: {results.get('seed')}, "
        f"samples per item: {samples}). `sample/…` metrics come from sampling at temperature "
        f"{results.get('temperature', 1.0)}, top_p {results.get('top_p', 1.0)} "
        "(95% bootstrap interval in brackets), `score/…` from exact log-probabilities of the valid "
        "outputs, `steer/…` is the in-context NLL after k examples. Full results: "
        f"[`{EVAL_DIR_IN_REPO}/results.json`]({EVAL_DIR_IN_REPO}/results.json), "
        f"[`{EVAL_DIR_IN_REPO}/report.md`]({EVAL_DIR_IN_REPO}/report.md).",
        "",
        *rows,
    ]
    return "\n".join(lines + (["", *failed] if failed else []))


# --------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------


def _versions() -> str:
    found = [f"spectrum-tune {__version__}"]
    packages = (("peft", "PEFT"), ("trl", "TRL"), ("transformers", "Transformers"), ("torch", "PyTorch"))
    for package, label in packages:
        try:
            found.append(f"{label} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _method(run: Run, merged: bool, quantized: bool) -> str:
    if run.kind == "full":
        return "full fine-tune (all weights trained)"
    config = run.adapter_config
    targets = run.recipe.get("lora_target_modules") or sorted(
        {str(module).rsplit(".", 1)[-1] for module in config.get("target_modules") or []}
    )
    targets = ", ".join(targets) if isinstance(targets, list) else targets
    method = "QLoRA (LoRA on a 4-bit NF4 base)" if quantized else "LoRA"
    method += f" — r={config.get('r')}, alpha={config.get('lora_alpha')}, target modules: {targets}"
    return method + (" — merged into the full-precision base weights" if merged else "")


def _usage(repo: str, base_ref: str, adapter: bool, tokenizer_ref: str, base_note: str | None) -> str:
    """Code a stranger can run: ``base_ref``/``tokenizer_ref`` are Python expressions (a quoted Hub
    id, or ``tiny_model_path()`` for the tiny model, which ships with spectrum-tune)."""
    lines = ["from transformers import AutoModelForCausalLM, AutoTokenizer", ""]
    if "tiny_model_path()" in (base_ref, tokenizer_ref):
        lines.insert(1, "from spectrum_tune.world import tiny_model_path  # pip install spectrum-tune")
    if adapter:
        lines = ["from peft import PeftModel", *lines, base_note]  # no note for a Hub base
        lines += [
            f"base = AutoModelForCausalLM.from_pretrained({base_ref})",
            f'model = PeftModel.from_pretrained(base, "{repo}")',
        ]
    else:
        lines.append(f'model = AutoModelForCausalLM.from_pretrained("{repo}")')
    lines += [
        f"tokenizer = AutoTokenizer.from_pretrained({tokenizer_ref})",
        "",
        'messages = [{"role": "user", "content": "Pick a random number between 1 and 10."}]',
        "inputs = tokenizer.apply_chat_template(",
        '    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True',
        ")",
        "# Sample: the spread lives in the distribution; greedy decoding only returns its mode.",
        "outputs = model.generate(**inputs, do_sample=True, temperature=1.0, max_new_tokens=32)",
        'print(tokenizer.decode(outputs[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))',
    ]
    return "```python\n" + "\n".join(line for line in lines if line is not None) + "\n```"


def render_card(
    run: Run,
    results: dict[str, Any] | None,
    repo_id: str | None,
    merged: bool,
    license: str | None,
    has_tokenizer: bool,
) -> Any:
    from huggingface_hub import ModelCard, ModelCardData

    summary = run.summary
    base_name = run.recipe.get("model_name_or_path") or summary.get("model")
    recipe, data_notes = public_recipe(run.recipe)  # no local paths: the card is published
    base_hub = hub_id(base_name)  # aliases map to their Hub models
    quantized = bool(summary.get("load_in_4bit", recipe.get("load_in_4bit", False)))
    adapter = run.kind == "adapter" and not merged
    repo = repo_id or "<owner>/<name>"
    model_name = (repo_id or run.path.resolve().name).rsplit("/", 1)[-1]
    tags = [*BASE_TAGS] + (["lora"] if run.kind == "adapter" else []) + (["qlora"] if quantized else [])
    dataset = recipe.get("dataset_name") or public_recipe({"dataset_name": summary.get("dataset")})[0].get(
        "dataset_name"
    )
    hub_datasets = [name for name in str(dataset or "").split(",") if hub_id(name.strip())]
    entries = eval_results(results) if results else []

    data = ModelCardData(
        base_model=base_hub,
        library_name="peft" if adapter else "transformers",
        license=license or base_license(base_name),
        tags=tags,
        pipeline_tag="text-generation",
        datasets=hub_datasets or None,
        model_name=model_name,
        eval_results=entries or None,
    )
    tiny = base_name == TINY_ALIAS
    base_ref = f'"{base_hub}"' if base_hub else "tiny_model_path()" if tiny else '"path/to/base-model"'
    shown = public_base(base_name)
    base_note = None if base_hub or tiny else f"# the base model was a local model named {shown}"
    base_text = (
        f"[`{base_hub}`](https://huggingface.co/{base_hub})" if base_hub
        else "the tiny world model `spectrum-tune/tiny` (built locally by spectrum-tune)" if tiny
        else f"`{shown}` (a local model)"
    )  # fmt: skip
    gguf = (run.recipe.get("model_init_kwargs") or {}).get("gguf_file")
    gguf_note = (
        f"\n- base weights: trained on the dequantized GGUF file `{gguf}` of the base; the adapter "
        "applies to the Hub model's own weights, which differ from those by the quantization error"
        if gguf and base_hub
        else ""
    )
    what = (
        f"A LoRA adapter for {base_text}" if adapter
        else f"{base_text} with a LoRA adapter merged in" if merged
        else f"A full fine-tune of {base_text}"
    )  # fmt: skip
    alpha = recipe.get("spectrum_alpha", summary.get("spectrum_alpha", 1.0))
    beta = recipe.get("spectrum_beta", summary.get("spectrum_beta", 1.0))

    def count(key: str) -> str:
        value = summary.get(key)
        return "not recorded" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)

    losses = (summary.get("first_logged_loss"), summary.get("last_logged_loss"))
    loss_text = f"; logged loss {losses[0]:.4g} → {losses[1]:.4g}" if None not in losses else ""
    sections = [
        f"# {model_name}",
        f"{what}, trained with **spectrum-tune** (a TRL `SFTTrainer` subclass) on multi-reference "
        "targets with a distribution-matching loss, so the model keeps the whole range of valid "
        "outputs instead of collapsing onto one favourite answer, while staying accurate where one "
        "answer is right.",
        "## Training objective",
        "For a context *x* with valid outputs *y₁…y_K* and target weights *w* (summing to 1), let "
        "*s_k = log p(y_k | x)* be the log-probability of the complete output (end-of-turn token "
        "included):\n\n```\nL = α·(−logsumexp s) + β·KL(w‖softmax s)\n```\n\n"
        f"with **α = {alpha}** (the mass term: probability on valid outputs, i.e. accuracy) and "
        f"**β = {beta}** (the match term: spread that mass like the target). A row with a single "
        "reference is ordinary SFT.",
        "## Training data",
        f"- dataset: `{dataset}`\n"
        f"- groups (contexts): {count('groups')}, of which multi-reference: "
        f"{count('multi_reference_groups')}; mean references per group: {count('mean_references')}\n"
        f"- method: {_method(run, merged, quantized)}\n"
        f"- steps: {count('global_steps')}{loss_text}{gguf_note}",
        "## How to use",
        _usage(repo, base_ref, adapter, f'"{repo}"' if has_tokenizer else base_ref, base_note),
    ]
    if results:
        sections += ["## Evaluation", _eval_markdown(results)]
    sections += [
        "## Recipe",
        f"The full resolved recipe (`{RECIPE_FILE}` in this repo); re-run it with "
        f"`spectrum-tune train --config {RECIPE_FILE}`"
        + (
            "".join(f"\n- `{key}: {recipe[key]}`: {note}" for key, note in data_notes.items()) + "\n"
            if data_notes
            else ""
        )
        + ":\n\n```yaml\n"
        + yaml.safe_dump(recipe, sort_keys=True).rstrip()
        + "\n```",
        "## Framework versions",
        _versions(),
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def build_card(
    run_dir: str | Path,
    eval_dir: str | Path | None = None,
    repo_id: str | None = None,
    *,
    merged: bool = False,
    license: str | None = None,
) -> Any:
    """The model card (``huggingface_hub.ModelCard``) for a run, with eval results if given."""
    from ..evaluation.report import load_results

    run = read_run(run_dir)
    results = load_results(eval_dir) if eval_dir is not None else None
    has_tokenizer = any((run.path / name).is_file() for name in TOKENIZER_FILES)
    return render_card(run, results, repo_id, merged, license, has_tokenizer)
