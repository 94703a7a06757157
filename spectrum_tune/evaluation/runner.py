"""Run eval tasks on one model, aggregate metrics, and write ``results.json`` atomically.

results.json (``schema_version`` 1)::

    {"schema_version": 1, "model", "adapter", "gguf_file", "mode", "seed", "samples", "split",
     "backend": {"kind": "local"} | {"kind": "served", "host", "model", "server_version", "score", ...},
     "published_eot", "temperature", "top_p" (the run's; 1.0 unless set),
     "created", "wall_seconds": {"score": s, "sample": s, "steer": s, "total": s},
     "tasks": {NAME: {"suite", "split", "kind", "description", "path", "status": "ok" | "failed",
                      "temperature", "top_p", "max_new_tokens", "stop" (what its samples were
                      drawn with; sampled tasks only),
                      "error", "traceback" (failed only), "n_items",
                      "metrics": {"sample": {...}, "score": {...}, "steer": {...}},
                      "metrics_n": {"sample": {metric: items averaged}, ...},
                      "items": [{"prompt", "references", "weights",
                                 "sample": {"metrics", "counts", "counts_extracted",
                                            "generations", "n_generations"},
                                 "score": {"metrics", "logprobs", "q"}}]}},
     # counts: normalised answer -> count over all N samples; counts_extracted (tasks with
     # ``extract``): the same over the extracted answers, "" for samples nothing was read from;
     # generations: the first 10 raw
     # samples; logprobs: s_k per reference; q: softmax(s), the renormalised valid-set distribution
     # overtone items add "viewpoints" [{text, keywords, label}] and sample "viewpoints" {name: share
     # of samples presenting it}; their sample metrics add overtone_coverage/_union/_complete
     # (steer items instead hold {"description", "n_examples", "n_heldout", "metrics", "nll": {k: [...]}})
     "summary": {"by_suite": {SUITE: {...}}, "by_split": {SPLIT: {...}}, "overall": {...}}}

Metrics are namespaced by how they were measured: ``metrics["sample"]`` (from N samples:
validity, accuracy, coverage, yield, unique_pct, raw_unique_pct, collision(+_se), js/kl/
reverse_kl/tv with ``_ci_low``/``_ci_high``, entropy, free-text spread), ``metrics["score"]``
(exact log-probs: valid_mass, answer_prob/answer_logprob, js/kl/reverse_kl/tv, entropy) and
``metrics["steer"]`` (``incontext_nll@k``). A task's metric is the mean over its items (a CI
bound is the mean of the items' bounds: conservative for the mean); ``metrics_n`` gives, per
metric, how many items that mean averaged (items where it is undefined are left out). A summary entry is, per
namespace, the mean over the ok tasks of the group plus ``n_tasks``/``n_failed``. Metrics that
do not apply are absent; ones that are undefined (e.g. no valid sample) are ``null``.
Steer tasks are scored (not sampled) in every mode.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpectrumError
from ..io import write_json_atomic
from .backends import Backend, ScoringUnavailable
from .local import LocalBackend, as_backend
from .served import ServedOptions
from .tasks import Task, resolve_tasks

__all__ = ["MODES", "SCHEMA_VERSION", "EvalOptions", "load_backend", "load_for_eval", "run_eval", "run_task"]

SCHEMA_VERSION = 1
MODES = ("sample", "score", "both")
NAMESPACES = ("sample", "score", "steer", "verbalized")
logger = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    """Everything ``spectrum-tune eval`` takes (see :func:`spectrum_tune.cli.eval.main`)."""

    model: str
    tasks: list[str]
    out: Path
    adapter: str | None = None
    gguf_file: str | None = None
    mode: str = "both"
    samples: int | None = None
    seed: int = 0
    batch_size: int = 64
    split: str = "all"
    published_eot: bool = False
    progress: bool = True
    prefix_sharing: bool = True  # score mode: encode each prompt once for all its references
    prefill_once: bool = True  # sample mode: encode each prompt once for all its samples
    published: bool = False  # also the published (tsor13/spectrum) metrics, under their names
    keep_generations: int | None = 10  # raw generations kept per item (None: all)
    novelty_classifier: str | None = None  # NoveltyBench pairwise classifier path ("default": theirs)
    novelty_threshold: float | None = None
    reward_model: str | None = None  # reward model path for NoveltyBench utility_k
    verbalized: int | None = None  # Verbalized Sampling arm: ask for this many answers + probabilities
    temperature: float | None = None  # sample mode; None: the task's own, else 1.0
    top_p: float | None = None  # sample mode; None: the task's own, else 1.0
    overtone_judge: str = "keywords"  # overtone tasks: keyword rules, or an NLI model path / Hub id
    served: ServedOptions | None = None  # a served model (OpenAI-compatible endpoint) instead of --model


def sampling_settings(task: Task, options: EvalOptions) -> dict[str, float]:
    """The temperature and top-p a task is sampled at: the run's flag, else the task's, else 1.0
    (a flag overrides every task, as ``--samples`` does)."""

    def pick(flag: float | None, own: float | None) -> float:
        return float(flag if flag is not None else own if own is not None else 1.0)

    return {
        "temperature": pick(options.temperature, task.temperature),
        "top_p": pick(options.top_p, task.top_p),
    }


def load_for_eval(model: str, adapter: str | None = None, gguf_file: str | None = None) -> tuple[Any, Any]:
    """Model (eval mode) and tokenizer; any loading failure becomes a one-line SpectrumError."""
    from ..models import load_model, load_tokenizer

    try:
        tokenizer_source = (
            adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else model
        )
        tokenizer = load_tokenizer(
            tokenizer_source, gguf_file=None if tokenizer_source == adapter else gguf_file
        )
        loaded = load_model(model, adapter=adapter, gguf_file=gguf_file)
    except SpectrumError:
        raise
    except Exception as error:  # safetensors, config and PEFT errors all mean "cannot load"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpectrumError(f"cannot load model '{model}': {reason}") from error
    import torch

    # from_pretrained loads on the CPU; quantized models are already placed by their loader
    if torch.cuda.is_available() and getattr(loaded, "hf_quantizer", None) is None:
        loaded.to("cuda")
    loaded.eval()
    return loaded, tokenizer


def load_backend(options: EvalOptions) -> Backend:
    """The backend the run draws from: the served endpoint, else the model loaded here."""
    if options.served is not None:
        from .served import ServedBackend

        return ServedBackend(options.served, cache_dir=Path(options.out) / "served_cache")
    model, tokenizer = load_for_eval(options.model, options.adapter, options.gguf_file)
    return LocalBackend(
        model,
        tokenizer,
        batch_size=options.batch_size,
        prefix_sharing=options.prefix_sharing,
        prefill_once=options.prefill_once,
    )


def load_judges(options: EvalOptions, tasks: list[Task] = ()) -> dict[str, Any]:
    """The NoveltyBench equivalence classifier and reward model named by the options, and the
    overtone judge where ``tasks`` has an overtone task (each loaded once)."""
    from .metrics.novelty import PairClassifier, RewardModel

    judges: dict[str, Any] = {"threshold": options.novelty_threshold}
    if any(task.kind == "overtone" for task in tasks):
        from .overtone import load_overtone_judge

        judges["overtone"] = load_overtone_judge(options.overtone_judge)
    try:
        if options.novelty_classifier:
            judges["classifier"] = PairClassifier(options.novelty_classifier)
        if options.reward_model:
            judges["reward_model"] = RewardModel(options.reward_model)
    except Exception as error:  # any loading failure is one line for the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpectrumError(f"cannot load the NoveltyBench classifier / reward model: {reason}") from error
    return judges


def mean_metrics(records: list[dict[str, float] | None]) -> dict[str, float]:
    """Per-key mean over records (ignoring missing and NaN values; NaN when none is defined)."""
    values: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for key, value in (record or {}).items():
            values[key].append(value)
    means = {}
    for key, column in values.items():
        finite = [v for v in column if v is not None and not math.isnan(v)]
        means[key] = float(np.mean(finite)) if finite else math.nan
    return means


def metric_counts(records: list[dict[str, float] | None]) -> dict[str, int]:
    """Per key, how many records :func:`mean_metrics` averaged (the defined, non-NaN values).

    A task mean over the items where a metric is defined says, through this, how many those were
    (an arm with no valid sample on the hard items is averaged over the easy ones only).
    """
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        for key, value in (record or {}).items():
            counts[key] += int(value is not None and not math.isnan(value))
    return dict(counts)


def _items_base(task: Task) -> list[dict[str, Any]]:
    if task.kind == "steer":
        return [{} for _ in task.items]
    return [
        {
            "prompt": item.prompt,
            **({"references": item.references, "weights": item.weights} if item.references else {}),
            **({"validator": item.validator.spec} if item.validator else {}),
            **(
                {"viewpoints": [vars(v) | {"keywords": list(v.keywords)} for v in item.viewpoints]}
                if item.viewpoints
                else {}
            ),
        }
        for item in task.items
    ]


def run_task(
    model: Any,
    tokenizer: Any,
    task: Task,
    options: EvalOptions,
    wall: dict[str, float],
    judges: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate one task in the requested mode(s); adds the time spent per mode to ``wall``.

    ``judges`` are the loaded NoveltyBench models (:func:`load_judges`) for free-text tasks.
    ``model`` may be a :class:`~spectrum_tune.evaluation.backends.Backend`; where it cannot score
    exactly, score mode is left out of ``both`` (the refusal is in results.json) and a
    ``score``-only run of a non-steer task fails with the refusal.
    """
    from .sample import sample_task
    from .score import score_task
    from .steer import steer_task
    from .verbalized import verbalized_task

    backend = as_backend(
        model,
        tokenizer,
        batch_size=options.batch_size,
        prefix_sharing=options.prefix_sharing,
        prefill_once=options.prefill_once,
    )
    model, tokenizer = backend, backend.tokenizer
    items = _items_base(task)
    metrics: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    sampling = sampling_settings(task, options)

    def collect(namespace: str, records: list[dict[str, Any] | None]) -> None:
        for item, record in zip(items, records, strict=True):
            if record is not None:
                item[namespace] = record
        if any(record is not None for record in records):
            metrics[namespace] = mean_metrics([r["metrics"] for r in records if r is not None])
            counts[namespace] = metric_counts([r["metrics"] for r in records if r is not None])

    runners = {
        "steer": lambda: steer_task(
            model, tokenizer, task, batch_size=options.batch_size, published=options.published
        ),
        "score": lambda: score_task(
            model,
            tokenizer,
            task,
            published_eot=options.published_eot,
            batch_size=options.batch_size,
            prefix_sharing=options.prefix_sharing,
            published=options.published,
        ),
        "verbalized": lambda: verbalized_task(model, tokenizer, task, options.verbalized, seed=options.seed),
        "sample": lambda: sample_task(
            model,
            tokenizer,
            task,
            samples=options.samples,
            seed=options.seed,
            batch_size=options.batch_size,
            progress=options.progress,
            published=options.published,
            keep_generations=options.keep_generations,
            judges=judges,
            prefill_once=options.prefill_once,
            **sampling,
        ),
    }
    if task.kind == "steer":
        modes = ["steer"]  # in-context NLL is a scoring measurement, run whatever the mode
    elif task.kind == "overtone":
        modes = ["sample"]  # coverage of viewpoints is judged on sampled answers, whatever the mode
    else:
        modes = ["score", "sample"] if options.mode == "both" else [options.mode]
        refusal = getattr(backend, "score_refusal", lambda: None)() if "score" in modes else None
        if refusal is not None and options.mode == "both":
            modes.remove("score")  # a served chat API: sample only, the refusal is recorded
        elif refusal is not None:
            raise ScoringUnavailable(refusal)
        if options.verbalized and task.kind != "freetext":
            modes.append("verbalized")
    for mode in modes:
        start = time.perf_counter()
        collect(mode, runners[mode]())
        wall[mode] += time.perf_counter() - start
    settings = {**sampling, "max_new_tokens": task.max_new_tokens, "stop": list(task.stop)}
    header = {**_task_header(task), **(settings if "sample" in modes else {})}
    return {**header, "status": "ok", "metrics": metrics, "metrics_n": counts, "items": items}


def _task_header(task: Task) -> dict[str, Any]:
    return {
        "suite": task.suite,
        "split": task.split,
        "kind": task.kind,
        "description": task.description,
        "path": str(task.path),
        "n_items": len(task.items),
    }


def summarize(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means of task metrics per suite, per split and overall (ok tasks only)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {
        "by_suite": defaultdict(list),
        "by_split": defaultdict(list),
    }
    for result in tasks.values():
        groups["by_suite"][result["suite"]].append(result)
        groups["by_split"][result["split"]].append(result)

    def block(results: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [r for r in results if r["status"] == "ok"]
        summary: dict[str, Any] = {"n_tasks": len(results), "n_failed": len(results) - len(ok)}
        for namespace in NAMESPACES:
            means = mean_metrics([r["metrics"].get(namespace) for r in ok])
            kept = {
                k: v
                for k, v in means.items()
                if not k.endswith(("_ci_low", "_ci_high")) and k != "n_in_support"
            }
            if kept:
                summary[namespace] = kept
        return summary

    summary = {
        name: {key: block(results) for key, results in group.items()} for name, group in groups.items()
    }
    summary["overall"] = block(list(tasks.values()))
    return summary


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: undefined metrics are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def run_eval(options: EvalOptions) -> dict[str, Any]:
    """Resolve tasks, load the model, run every task, write results.json, report.md and plots.

    A task that raises is recorded as ``"status": "failed"`` with its error and the run goes on;
    results.json is written once at the end (atomically). Returns the results.
    """
    if options.mode not in MODES:
        raise SpectrumError(f"--mode must be one of {', '.join(MODES)}, got '{options.mode}'")
    if options.samples is not None and options.samples < 1:
        raise SpectrumError(f"--samples must be >= 1, got {options.samples}")
    if options.batch_size < 1:
        raise SpectrumError(f"--batch_size must be >= 1, got {options.batch_size}")
    if options.keep_generations is not None and options.keep_generations < 0:
        raise SpectrumError(f"--keep_generations must be >= 0 or 'all', got {options.keep_generations}")
    if options.verbalized is not None and options.verbalized < 1:
        raise SpectrumError(f"--verbalized must be >= 1, got {options.verbalized}")
    if options.novelty_threshold is not None and not options.novelty_classifier:
        raise SpectrumError("--novelty_threshold needs --novelty_classifier")
    if options.temperature is not None and not options.temperature > 0:
        raise SpectrumError(f"--temperature must be > 0, got {options.temperature}")
    if options.top_p is not None and not 0 < options.top_p <= 1:
        raise SpectrumError(f"--top_p must be in (0, 1], got {options.top_p}")
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise SpectrumError(f"--out '{out}' exists and is not a directory")
    tasks = resolve_tasks(options.tasks, options.split)  # before loading: bad task files fail fast
    backend = load_backend(options)
    probe = getattr(backend, "score_refusal", None)  # only a served model may refuse
    refusal = probe() if probe is not None and options.mode != "sample" else None
    if refusal is not None and options.mode == "score":
        raise SpectrumError(refusal)
    if refusal is not None:
        logger.warning("spectrum-tune: sample mode only: %s", refusal)
    started = time.perf_counter()
    wall = {"score": 0.0, "sample": 0.0, "steer": 0.0, "verbalized": 0.0}
    text_kinds = {"freetext", "overtone"}
    judges = load_judges(options, tasks) if any(task.kind in text_kinds for task in tasks) else None
    results_tasks: dict[str, dict[str, Any]] = {}
    for task in tasks:
        try:
            results_tasks[task.name] = run_task(backend, backend.tokenizer, task, options, wall, judges)
        except Exception as error:  # one broken task must not lose the others' results
            results_tasks[task.name] = {
                **_task_header(task),
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(limit=-3),
                "metrics": {},
                "items": [],
            }
    wall["total"] = time.perf_counter() - started
    results = {
        "schema_version": SCHEMA_VERSION,
        "model": options.served.model if options.served is not None else options.model,
        "backend": backend.describe(),
        "adapter": options.adapter,
        "gguf_file": options.gguf_file,
        "mode": options.mode,
        "seed": options.seed,
        "samples": options.samples,
        "split": options.split,
        "published_eot": options.published_eot,
        "published": options.published,
        "keep_generations": "all" if options.keep_generations is None else options.keep_generations,
        "verbalized": options.verbalized,
        "temperature": 1.0 if options.temperature is None else options.temperature,
        "top_p": 1.0 if options.top_p is None else options.top_p,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": {key: round(value, 3) for key, value in wall.items()},
        "tasks": results_tasks,
        "summary": summarize(results_tasks),
    }
    results = _json_safe(results)
    write_json_atomic(out / "results.json", results)
    from .report import write_report

    write_report(results, out)
    return results
