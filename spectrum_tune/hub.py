"""Share a run on the Hugging Face Hub: stage the repo folder, write its model card, push it.

The folder that would be uploaded is always built first (:func:`stage_upload`) in a temporary
directory (or ``--out`` for a dry run), never inside the run directory, and scanned for the Hub
token before anything leaves the machine. The upload itself is ``HfApi.create_repo(exist_ok=True)``
(+ ``create_branch`` for a revision) + ``upload_folder``: every step is idempotent, so a failed
push is fixed by running it again.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .errors import SpectrumError
from .recipe import SECRET_KEYS
from .train import RECIPE_FILE, SUMMARY_FILE

__all__ = [
    "build_card",
    "cmd_push",
    "default_staging_dir",
    "eval_results",
    "flatten_metrics",
    "push_run",
    "stage_upload",
]

CARD_FILE = "README.md"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
# Explicit allow-lists: a run dir also holds training_args.bin (a pickle of the TrainingArguments,
# hub_token included), checkpoints and logs, none of which may be uploaded.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "vocab.json", "vocab.txt", "merges.txt",
    "tokenizer.model", "spiece.model",
)  # fmt: skip
MODEL_CONFIG_FILES = ("config.json", "generation_config.json")
EVAL_FILES = ("results.json", "report.md")
EVAL_DIR_IN_REPO = "eval"
CI_SUFFIXES = ("_ci_low", "_ci_high")
BASE_TAGS = ("spectrum-tune", "trl")
_LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".txt", ".gguf", ".yaml", ".yml")
_SCAN_CHUNK = 16 << 20

PUSH_USAGE = (
    "spectrum-tune push RUN_DIR --repo-id OWNER/NAME [--private] [--revision BRANCH] "
    "[--commit-message MSG] [--eval DIR] [--merged] [--license ID] [--dry-run [--out DIR]]"
)


# --------------------------------------------------------------------------------------------
# Reading a run directory
# --------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What a run directory holds that the upload and the card need."""

    path: Path
    kind: str  # "adapter" (PEFT) or "full" (a full fine-tune saved with save_pretrained)
    recipe: dict[str, Any]
    summary: dict[str, Any]
    weights: list[str] = field(default_factory=list)
    adapter_config: dict[str, Any] = field(default_factory=dict)


def _read_run(run_dir: str | Path) -> _Run:
    """Check ``run_dir`` is a finished spectrum-tune run and read its recipe and summary."""
    path = Path(run_dir)
    if not path.is_dir():
        raise SpectrumError(f"run directory '{run_dir}' does not exist")
    recipe_path = path / RECIPE_FILE
    if not recipe_path.is_file():
        raise SpectrumError(f"'{run_dir}' has no {RECIPE_FILE}: not a spectrum-tune run directory")
    try:
        recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise SpectrumError(f"'{recipe_path}' is not valid YAML") from None
    if not isinstance(recipe, dict):
        raise SpectrumError(f"'{recipe_path}' is not a recipe (a YAML mapping)")
    # Defence in depth: train.py never writes these keys, but a hand-edited recipe might.
    recipe = {key: value for key, value in recipe.items() if key not in SECRET_KEYS}
    summary_path = path / SUMMARY_FILE
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}

    if (path / "adapter_config.json").is_file():
        if not (path / "adapter_model.safetensors").is_file():
            raise SpectrumError(f"'{run_dir}' has adapter_config.json but no adapter_model.safetensors")
        adapter_config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        return _Run(path, "adapter", recipe, summary, list(ADAPTER_FILES), adapter_config)
    weights = sorted(p.name for p in path.glob("model*.safetensors"))
    if (path / "config.json").is_file() and weights:
        index = [name for name in ("model.safetensors.index.json",) if (path / name).is_file()]
        return _Run(path, "full", recipe, summary, weights + index)
    raise SpectrumError(
        f"'{run_dir}' holds no adapter (adapter_model.safetensors + adapter_config.json) "
        "and no full model (config.json + model*.safetensors)"
    )


def _hub_id(name: Any) -> str | None:
    """``name`` if it can only be a Hub repo id: not a local path, a data file or the tiny alias."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from .models import TINY_ALIAS

    if not isinstance(name, str) or name == TINY_ALIAS or name.startswith((".", "/", "~")):
        return None
    if name.lower().endswith(_LOCAL_SUFFIXES) or Path(name).expanduser().exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _base_license(base: str | None) -> str | None:
    """The base model's license from its README metadata, when a copy is on this machine."""
    from huggingface_hub import metadata_load, try_to_load_from_cache

    if not base:
        return None
    readme: Any = Path(base).expanduser() / CARD_FILE
    if not readme.is_file() and _hub_id(base):
        readme = try_to_load_from_cache(base, CARD_FILE)  # offline: only what is already cached
    if not isinstance(readme, (str, Path)) or not Path(readme).is_file():
        return None
    try:
        license_id = (metadata_load(readme) or {}).get("license")
    except (ValueError, yaml.YAMLError):
        return None
    return license_id if isinstance(license_id, str) else None


# --------------------------------------------------------------------------------------------
# Eval metrics → model-index entries and a markdown table
# --------------------------------------------------------------------------------------------


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
        f"samples per item: {samples}). `sample/…` metrics come from sampling at temperature 1 "
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


def _method(run: _Run, merged: bool, quantized: bool) -> str:
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


def _usage(repo: str, base_ref: str, adapter: bool, tokenizer_repo: str, base_note: str | None) -> str:
    lines = ["from transformers import AutoModelForCausalLM, AutoTokenizer", ""]
    if adapter:
        lines = ["from peft import PeftModel", *lines, base_note]  # no note for a Hub base
        lines += [
            f'base = AutoModelForCausalLM.from_pretrained("{base_ref}")',
            f'model = PeftModel.from_pretrained(base, "{repo}")',
        ]
    else:
        lines.append(f'model = AutoModelForCausalLM.from_pretrained("{repo}")')
    lines += [
        f'tokenizer = AutoTokenizer.from_pretrained("{tokenizer_repo}")',
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


def _card(
    run: _Run,
    results: dict[str, Any] | None,
    repo_id: str | None,
    merged: bool,
    license: str | None,
    has_tokenizer: bool,
) -> Any:
    from huggingface_hub import ModelCard, ModelCardData

    recipe, summary = run.recipe, run.summary
    base_name = recipe.get("model_name_or_path") or summary.get("model")
    base_hub = _hub_id(base_name)
    quantized = bool(summary.get("load_in_4bit", recipe.get("load_in_4bit", False)))
    adapter = run.kind == "adapter" and not merged
    repo = repo_id or "<owner>/<name>"
    model_name = (repo_id or run.path.resolve().name).rsplit("/", 1)[-1]
    tags = [*BASE_TAGS] + (["lora"] if run.kind == "adapter" else []) + (["qlora"] if quantized else [])
    dataset = recipe.get("dataset_name") or summary.get("dataset")
    hub_datasets = [name for name in str(dataset or "").split(",") if _hub_id(name.strip())]
    entries = eval_results(results) if results else []

    data = ModelCardData(
        base_model=base_hub,
        library_name="peft" if adapter else "transformers",
        license=license or _base_license(base_name),
        tags=tags,
        pipeline_tag="text-generation",
        datasets=hub_datasets or None,
        model_name=model_name,
        eval_results=entries or None,
    )
    base_ref = base_hub or "path/to/base-model"
    base_note = f"# the base model is local: {base_name}" if not base_hub else None
    base_text = f"[`{base_hub}`](https://huggingface.co/{base_hub})" if base_hub else f"`{base_name}` (local)"
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
        f"- steps: {count('global_steps')}{loss_text}",
        "## How to use",
        _usage(repo, base_ref, adapter, repo if has_tokenizer else base_ref, base_note),
    ]
    if results:
        sections += ["## Evaluation", _eval_markdown(results)]
    sections += [
        "## Recipe",
        f"The resolved recipe (`{RECIPE_FILE}` in this repo); re-run it with "
        f"`spectrum-tune train --config {RECIPE_FILE}`:\n\n```yaml\n"
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
    from .harness.report import load_results

    run = _read_run(run_dir)
    results = load_results(eval_dir) if eval_dir is not None else None
    has_tokenizer = any((run.path / name).is_file() for name in TOKENIZER_FILES)
    return _card(run, results, repo_id, merged, license, has_tokenizer)


# --------------------------------------------------------------------------------------------
# Staging: exactly the folder that would be uploaded
# --------------------------------------------------------------------------------------------


def default_staging_dir(run_dir: str | Path) -> Path:
    """``RUN_DIR/../<run name>-hub-staging``: beside the run, never inside it."""
    run = Path(run_dir).resolve()
    return run.parent / f"{run.name}-hub-staging"


def _list_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _is_earlier_staging(folder: Path) -> bool:
    from huggingface_hub import metadata_load

    card = folder / CARD_FILE
    if not (card.is_file() and (folder / RECIPE_FILE).is_file()):
        return False
    try:
        tags = (metadata_load(card) or {}).get("tags") or []
    except (ValueError, yaml.YAMLError):
        return False
    return "spectrum-tune" in tags


def _check_out_dir(out: Path, run: Path) -> None:
    out_abs, run_abs = out.resolve(), run.resolve()
    if out_abs == run_abs or run_abs in out_abs.parents or out_abs in run_abs.parents:
        raise SpectrumError(f"staging folder '{out}' must be outside the run directory (and not contain it)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_earlier_staging(out))):
        raise SpectrumError(f"staging folder '{out}' exists and is not an earlier staging; choose another")


def _ambient_token() -> str | None:
    from huggingface_hub import get_token

    try:
        return get_token()
    except Exception:  # e.g. a failed OIDC exchange: there is no token to scan for, not an error here
        return None


def _refuse_secrets(folder: Path, secrets: list[str]) -> None:
    """Refuse to ship a folder in which any file contains one of ``secrets`` (never printed)."""
    needles = [secret.encode() for secret in secrets if secret]
    if not needles:
        return
    overlap = max(len(needle) for needle in needles) - 1
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        with path.open("rb") as stream:
            tail = b""
            while chunk := stream.read(_SCAN_CHUNK):
                window = tail + chunk
                if any(needle in window for needle in needles):
                    raise SpectrumError(
                        f"staged file '{path.relative_to(folder)}' contains your Hub token; refusing to "
                        "upload it (remove the token from the run's files and retry)"
                    )
                tail = window[-overlap:] if overlap else b""


def _save_merged(run: _Run, out: Path) -> None:
    """Merge the LoRA into an unquantized copy of the base and save the full model."""
    from .models import load_model

    base = run.recipe.get("model_name_or_path")
    if not base:
        raise SpectrumError(f"'{run.path / RECIPE_FILE}' has no model_name_or_path to merge into")
    kwargs: dict[str, Any] = {}
    if run.recipe.get("dtype") not in (None, "auto"):
        kwargs["dtype"] = run.recipe["dtype"]
    gguf_file = (run.recipe.get("model_init_kwargs") or {}).get("gguf_file")
    # No quantization_config: a QLoRA adapter is merged into the full-precision base weights.
    model = load_model(base, adapter=str(run.path), gguf_file=gguf_file, **kwargs)
    model.merge_and_unload().save_pretrained(out)


def stage_upload(
    run_dir: str | Path,
    out_dir: str | Path,
    eval_dir: str | Path | None = None,
    merged: bool = False,
    repo_id: str | None = None,
    *,
    license: str | None = None,
    token: str | None = None,
) -> list[str]:
    """Write exactly the repo folder a push would upload into ``out_dir``; returns its files.

    Adapter runs stage the adapter + tokenizer; full fine-tunes their model files; ``merged``
    stages the base with the LoRA merged in instead of the adapter. Base weights are never
    staged otherwise. The folder is built beside ``out_dir`` and renamed into place, so an
    interrupted stage leaves nothing half-written; ``out_dir`` may be an earlier staging.
    """
    from .harness.report import load_results

    run = _read_run(run_dir)
    if merged and run.kind != "adapter":
        raise SpectrumError(f"--merged needs a LoRA adapter run; '{run_dir}' holds a full model")
    results = load_results(eval_dir) if eval_dir is not None else None
    out = Path(out_dir)
    _check_out_dir(out, run.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if merged:
            _save_merged(run, building)
        else:
            names = run.weights + (list(MODEL_CONFIG_FILES) if run.kind == "full" else [])
            for name in names:
                if (run.path / name).is_file():
                    shutil.copyfile(run.path / name, building / name)
        tokenizer_files = [name for name in TOKENIZER_FILES if (run.path / name).is_file()]
        for name in tokenizer_files:
            shutil.copyfile(run.path / name, building / name)
        (building / RECIPE_FILE).write_text(yaml.safe_dump(run.recipe, sort_keys=True), encoding="utf-8")
        if eval_dir is not None:
            (building / EVAL_DIR_IN_REPO).mkdir()
            for name in EVAL_FILES:
                if (Path(eval_dir) / name).is_file():
                    shutil.copyfile(Path(eval_dir) / name, building / EVAL_DIR_IN_REPO / name)
        card = _card(run, results, repo_id, merged, license, bool(tokenizer_files))
        (building / CARD_FILE).write_text(str(card), encoding="utf-8")
        _refuse_secrets(building, [token or "", _ambient_token() or ""])
        if out.exists():
            shutil.rmtree(out)
        building.rename(out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return _list_files(out)


# --------------------------------------------------------------------------------------------
# Pushing
# --------------------------------------------------------------------------------------------


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        reason = str(error).splitlines()[0]
        raise SpectrumError(f"invalid repo id '{repo_id}' (expected OWNER/NAME): {reason}") from None


def _resolve_token(token: str | None) -> str:
    """The explicit token, else huggingface_hub's own resolution (HF_TOKEN, then the cached login)."""
    from huggingface_hub import get_token

    if not token:
        try:
            token = get_token()
        except Exception as error:  # a configured OIDC exchange that failed
            raise SpectrumError(f"cannot get a Hugging Face token: {_first_line(error)}") from None
    if not token:
        raise SpectrumError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` with a write token "
            "(or use --dry-run to stage the upload without pushing)"
        )
    return token


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of whichever HTTP client this huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]  # requests' errors subclass these
    for module in ("httpx2", "httpx"):  # huggingface_hub 2.x, 1.x
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _hub_error(error: Exception, repo_id: str, endpoint: str) -> SpectrumError:
    """One line saying what went wrong and what to do; the local run is untouched either way."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    response = getattr(error, "response", None) if isinstance(error, HfHubHTTPError) else None
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return SpectrumError(
            f"Hub authentication failed for '{repo_id}' (HTTP {status}): the token is invalid or cannot "
            "write to this namespace; set HF_TOKEN or run `hf auth login` with a write token"
        )
    if status == 404:
        return SpectrumError(f"Hub answered 404 for '{repo_id}': the repo or the revision does not exist")
    if status is not None:
        return SpectrumError(f"Hub request for '{repo_id}' failed (HTTP {status}): {_first_line(error)}")
    if isinstance(error, OfflineModeIsEnabled):
        return SpectrumError("HF_HUB_OFFLINE is set: unset it to push (or use --dry-run)")
    if isinstance(error, _transport_errors()):
        return SpectrumError(
            f"cannot reach the Hugging Face Hub at {endpoint} ({type(error).__name__}: "
            f"{_first_line(error)}); check the network or HF_ENDPOINT and retry (re-pushing is safe)"
        )
    # e.g. "Invalid metadata in README.md." + one line per problem: keep them all, on one line
    detail = " ".join(str(error).split()) or type(error).__name__
    return SpectrumError(f"push to '{repo_id}' failed: {type(error).__name__}: {detail}")


def push_run(
    run_dir: str | Path,
    repo_id: str,
    private: bool | None = False,
    revision: str | None = None,
    commit_message: str | None = None,
    eval_dir: str | Path | None = None,
    merged: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    *,
    out_dir: str | Path | None = None,
    license: str | None = None,
) -> str:
    """Upload a run (adapter, tokenizer, recipe, card, eval) to ``repo_id``; returns the commit URL.

    ``private`` applies when the repo is created (``None``: the namespace's default, like TRL's
    ``hub_private_repo``). With ``dry_run`` nothing is sent: the folder is staged at ``out_dir``
    (default :func:`default_staging_dir`) and its path returned. Any failure is a one-line
    :class:`SpectrumError`; the run directory is only read, and re-running is safe.
    """
    _check_repo_id(repo_id)
    _read_run(run_dir)  # fail on a bad run dir before asking for a token
    if dry_run:
        out = Path(out_dir) if out_dir is not None else default_staging_dir(run_dir)
        stage_upload(run_dir, out, eval_dir, merged, repo_id, license=license, token=token)
        return str(out)
    token = _resolve_token(token)
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    message = commit_message or f"Upload spectrum-tune run {Path(run_dir).resolve().name}"
    with tempfile.TemporaryDirectory(prefix="spectrum-hub-") as temporary:
        stage = Path(temporary) / "repo"
        stage_upload(run_dir, stage, eval_dir, merged, repo_id, license=license, token=token)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            target = getattr(url, "repo_id", None) or repo_id  # "NAME" resolves to the token's namespace
            if revision and revision != "main":
                api.create_branch(target, branch=revision, exist_ok=True, repo_type="model")
            commit = api.upload_folder(
                repo_id=target,
                folder_path=stage,
                commit_message=message,
                revision=revision,
                repo_type="model",
            )
        except Exception as error:
            raise _hub_error(error, repo_id, api.endpoint) from error
    return str(commit.commit_url)


def _push_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectrum-tune push",
        usage=PUSH_USAGE,
        description="Upload a run's adapter, tokenizer, recipe and model card (with eval results) to the "
        "Hugging Face Hub. The token comes from HF_TOKEN or `hf auth login` and is never written or printed.",
    )
    parser.add_argument("run_dir", help="a run directory written by `spectrum-tune train`")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="OWNER/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private (if it is new)")
    parser.add_argument("--revision", help="branch to push to (created if missing; default main)")
    parser.add_argument("--commit-message", "--commit_message", dest="commit_message")
    parser.add_argument("--eval", dest="eval_dir", help="an eval output dir: results.json goes into the card")
    parser.add_argument("--merged", action="store_true", help="upload base + LoRA merged into a full model")
    parser.add_argument("--license", help="license id for the card (default: the base model's, if known)")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true", help="stage only")
    parser.add_argument("--out", help="with --dry-run: staging folder (default RUN_DIR/../NAME-hub-staging)")
    return parser


def cmd_push(argv: list[str]) -> int:
    """``spectrum-tune push``: upload a run, or with ``--dry-run`` stage it and list its files."""
    args = _push_parser().parse_args(argv)
    if args.out and not args.dry_run:
        raise SpectrumError("--out is only used with --dry-run")
    result = push_run(
        args.run_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        eval_dir=args.eval_dir,
        merged=args.merged,
        dry_run=args.dry_run,
        out_dir=args.out,
        license=args.license,
    )
    if args.dry_run:
        folder = Path(result)
        files = _list_files(folder)
        print(f"dry run: staged {len(files)} files for {args.repo_id} in {folder} (nothing uploaded)")
        for name in files:
            print(f"  {name}  ({(folder / name).stat().st_size} bytes)")
    else:
        print(f"pushed {args.run_dir} to {args.repo_id}: {result}")
    return 0
