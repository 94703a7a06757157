"""The ``data-build`` job: prompts -> teacher samples -> classes -> validity -> weights -> rows.

Stages run teacher by teacher (one model in memory at a time): sample every prompt, read the
answers into classes and check them (validator, agreement), ask the judge about the survivors,
score them under each teacher for ``teacher`` weights, then write the rows. Every model call's
result is cached per prompt under ``OUT/cache/`` (a JSON file written atomically, named by a hash
of the prompt, its position and every setting that changes the result), so a killed build resumes
where it stopped and a finished one reruns without loading a model.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

from ..errors import SpectrumError
from ..evaluation.sample import item_seed
from ..io import write_json_atomic, write_text_atomic
from ..text import normalize_answer
from ..training.data import DataError, multiref_dataset
from .classes import AnswerClass, answer_classes, check_validity, class_weights
from .config import DataBuildConfig, TeacherSpec, fingerprint
from .inputs import PromptRow, read_prompts
from .report import render_report
from .teachers import Teacher

__all__ = ["build_data", "prompt_text"]

ROWS_FILE = "rows.jsonl"
REJECTED_FILE = "rejected.jsonl"


def prompt_text(prompt: str | list[dict[str, Any]]) -> str:
    """A prompt as one text (the judge's ``{prompt}``): a string, or the messages' contents."""
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)


def _cached(path: Path, compute: Callable[[], Any]) -> Any:
    """The JSON at ``path``, or ``compute()`` written there atomically first (the resume point)."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["value"]
    value = compute()
    write_json_atomic(path, {"value": value})
    return value


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="prompt", disable=not enabled)


def _check_inputs(rows: list[PromptRow], config: DataBuildConfig) -> None:
    first_is_text = isinstance(rows[0].prompt, str)
    for row in rows:
        if isinstance(row.prompt, str) != first_is_text:
            kinds = ["a string prompt", "a chat-message prompt"][:: 1 if first_is_text else -1]
            raise DataError(
                row.where,
                f"has {kinds[1]} but {rows[0].where} has {kinds[0]}; use one kind of prompt in a dataset",
            )
        if config.extract == "first_valid" and not row.known and row.validator is None:
            raise DataError(
                row.where,
                "--extract first_valid needs the row's valid set ('references') or a "
                "validator (the row's or --validator)",
            )


def _sample_all(
    config: DataBuildConfig, rows: list[PromptRow], indices: list[int], cache: Path
) -> list[dict[str, list[str]]]:
    """Per prompt (``indices``: positions in the input, which key the cache and the seeds), the
    stripped samples of every teacher."""
    samples: list[dict[str, list[str]]] = [{} for _ in rows]
    settings = {
        k: getattr(config, k)
        for k in (
            "samples",
            "max_new_tokens",
            "stop",
            "temperature",
            "top_p",
            "seed",
            "plain_format",
            "format_instruction",
        )
    }
    for spec in config.teachers:
        teacher = Teacher(spec, config.device, config.plain_format, config.format_instruction)
        with _bar(len(rows), f"sample {spec.label}", config.progress) as bar:
            for position, (index, row) in enumerate(zip(indices, rows, strict=True)):
                key = fingerprint("samples", spec, row.prompt, index, settings)
                draw = functools.partial(
                    teacher.sample,
                    row.prompt,
                    config.samples,
                    seed=item_seed(config.seed, spec.label, index),
                    max_new_tokens=config.max_new_tokens,
                    stop=config.stop,
                    temperature=config.temperature,
                    top_p=config.top_p,
                    batch_size=config.batch_size,
                )
                samples[position][spec.label] = _cached(cache / "samples" / f"{key}.json", draw)
                bar.update()
        teacher.close()
    return samples


def _judge_all(
    config: DataBuildConfig, rows: list[PromptRow], classes: list[list[AnswerClass]], cache: Path
) -> None:
    """P(yes) of every class still kept; below the threshold is a rejection reason."""
    spec: TeacherSpec = config.judge
    # a plain-text judge gets an answer cue, so its next words are the reply
    judge = Teacher(spec, config.device, "{prompt}\nAnswer:")
    with _bar(len(rows), f"judge {spec.label}", config.progress) as bar:
        for row, entries in zip(rows, classes, strict=True):
            for entry in (e for e in entries if e.kept):
                question = config.judge_prompt.replace("{prompt}", prompt_text(row.prompt)).replace(
                    "{answer}", entry.text
                )
                key = fingerprint("judge", spec, question)
                entry.p_yes = _cached(
                    cache / "judge" / f"{key}.json", lambda q=question: judge.p_yes(q, config.batch_size)
                )
                if entry.p_yes < config.judge_threshold:
                    entry.reasons.append(f"judge P(yes)={entry.p_yes:.2f} < {config.judge_threshold}")
            bar.update()
    judge.close()


def _teacher_probs(
    config: DataBuildConfig, rows: list[PromptRow], kept: list[list[AnswerClass]], cache: Path
) -> list[np.ndarray]:
    """Per row, the teachers' exact probabilities over its kept classes (each teacher's renormalised
    over them, then averaged over the teachers)."""
    totals = [np.zeros(len(entries)) for entries in kept]
    for spec in config.teachers:
        teacher = Teacher(spec, config.device, config.plain_format, config.format_instruction)
        with _bar(len(rows), f"score {spec.label}", config.progress) as bar:
            for index, (row, entries) in enumerate(zip(rows, kept, strict=True)):
                if entries:
                    texts = [e.text for e in entries]
                    key = fingerprint(
                        "score", spec, row.prompt, texts, config.plain_format, config.format_instruction
                    )
                    score = functools.partial(teacher.logprobs, row.prompt, texts, config.batch_size)
                    logps = _cached(cache / "score" / f"{key}.json", lambda score=score: score().tolist())
                    totals[index] += softmax(np.asarray(logps))
                bar.update()
        teacher.close()
    return [t / len(config.teachers) for t in totals]


def _entropy(weights: list[float]) -> float:
    p = np.asarray([w for w in weights if w > 0])
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one reference is 0.0 bits, not -0.0


def _row_record(
    row: PromptRow,
    entries: list[AnswerClass],
    chosen: list[AnswerClass],
    weights: list[float],
    cut: list[AnswerClass],
    unreadable: dict[str, int],
    config: DataBuildConfig,
) -> dict[str, Any]:
    """Everything the report and the outputs need about one prompt."""
    known = {normalize_answer(k) for k in row.known}
    record: dict[str, Any] = {
        "source": row.where,
        "prompt": row.prompt,
        "references": [c.text for c in chosen],
        "weights": weights,
        "counts": {c.text: c.counts for c in chosen},
        "unreadable": unreadable,
        "rejected": [
            {"answer": c.text, "count": c.total, "counts": c.counts, "reasons": c.reasons}
            for c in entries
            if not c.kept
        ],
        "cut": [{"answer": c.text, "count": c.total} for c in cut],
        "entropy_bits": _entropy(weights) if weights else None,
        "p_yes": {c.text: c.p_yes for c in chosen if c.p_yes is not None},
    }
    if known:
        valid = [normalize_answer(c.text) in known for c in chosen]
        record["known"] = {
            "references_valid": sum(valid),
            "references": len(valid),
            "mass_valid": float(sum(w for w, ok in zip(weights, valid, strict=True) if ok)),
            "answers_valid": sum(c.total for c in entries if normalize_answer(c.text) in known),
            "answers": sum(c.total for c in entries) + sum(unreadable.values()),
        }
    return record


def _output_row(record: dict[str, Any], config: DataBuildConfig) -> dict[str, Any]:
    metadata = {
        "source": record["source"],
        "teachers": [t.label for t in config.teachers],
        "samples": config.samples,
        "weights": config.weights,
        "counts": record["counts"],
        "rejected": record["rejected"],
        "unreadable": record["unreadable"],
    }
    if record["p_yes"]:
        metadata["judge"] = {"model": config.judge.label, "p_yes": record["p_yes"]}
    if record["cut"]:
        metadata["cut_by_max_k"] = record["cut"]
    return {
        "prompt": record["prompt"],
        "references": record["references"],
        "weights": record["weights"],
        "metadata": metadata,
    }


def _rejected_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    for record in records:
        for rejected in record["rejected"]:
            lines.append({"source": record["source"], "prompt": record["prompt"], **rejected})
        if not record["references"]:
            lines.append(
                {
                    "source": record["source"],
                    "prompt": record["prompt"],
                    "answer": None,
                    "count": 0,
                    "reasons": ["no answer kept: the prompt has no row"],
                }
            )
    return lines


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def build_data(config: DataBuildConfig) -> dict[str, Any]:
    """Run the build (module docstring); returns the summary that ``report.md`` renders.

    Writes ``OUT/rows.jsonl`` (rows ``train`` and ``SpectrumTrainer`` read unchanged, provenance in
    each row's ``metadata``), ``OUT/rejected.jsonl`` (every rejected answer with its reasons),
    ``OUT/report.md`` and ``OUT/summary.json``.
    """
    config.check()
    started = time.perf_counter()
    if config.public is not None:
        return _build_public(config, started)
    pattern = None
    if config.extract == "regex":
        try:
            pattern = re.compile(config.extract_regex)
        except re.error as error:
            raise SpectrumError(f"--extract-regex: invalid regular expression ({error})") from None
    rows = read_prompts(
        config.data,
        split=config.split,
        prompt_field=config.prompt_field,
        default_validator=config.validator,
        seed_references=config.seed_references,
    )
    _check_inputs(rows, config)
    cache = Path(config.out) / "cache"

    def build(indices: list[int]) -> list[dict[str, Any]]:
        return _records(config, [rows[i] for i in indices], indices, pattern, cache)

    selection = None
    if config.select is None:
        records = build(list(range(len(rows))))
    else:
        from .select import prismatic_select

        records, selection = prismatic_select(config, len(rows), build)
    out = Path(config.out)
    output = [_output_row(r, config) for r in records if r["references"]]
    if output:  # what `train` will do with them: a bad row fails here, not in training
        multiref_dataset([(f"{out / ROWS_FILE}:{i + 1}", row) for i, row in enumerate(output)], str(out))
    write_text_atomic(out / ROWS_FILE, _jsonl(output))
    write_text_atomic(out / REJECTED_FILE, _jsonl(_rejected_lines(records)))
    seconds = time.perf_counter() - started
    summary = _summary(records, config, seconds)
    if selection is not None:
        summary["selection"] = selection
    write_json_atomic(out / "summary.json", {**summary, "records": records})
    write_text_atomic(out / "report.md", render_report(summary, records))
    return summary


def _build_public(config: DataBuildConfig, started: float) -> dict[str, Any]:
    """``public:NAME``: the rows as :func:`.public.public_rows` makes them, checked, written."""
    from .public import public_rows

    out = Path(config.out)
    rows = public_rows(
        config.public,
        rows=config.public_rows,
        seed=config.seed,
        render=config.render,
        outputs=config.incontext_outputs,
    )
    multiref_dataset([(f"{out / ROWS_FILE}:{i + 1}", row) for i, row in enumerate(rows)], str(out))
    write_text_atomic(out / ROWS_FILE, _jsonl(rows))
    sizes = [len(row.get("references") or set(row.get("outputs", []))) for row in rows]
    entropy = [_entropy(row["weights"]) for row in rows if "weights" in row]
    summary = {
        "public": config.public,
        "render": config.render,
        "rows": len(rows),
        "references_mean": float(np.mean(sizes)),
        "wall_seconds": time.perf_counter() - started,
        "entropy_bits_mean": float(np.mean(entropy)) if entropy else None,
    }
    write_json_atomic(out / "summary.json", summary)
    lines = [
        f"# data-build report: public:{config.public}",
        "",
        f"- rows: {len(rows)} ({config.render}); distinct answers per row: {summary['references_mean']:.2f}",
    ]
    if entropy:
        lines.append(f"- target entropy: {summary['entropy_bits_mean']:.3f} bits (mean over rows)")
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
    return {**summary, "prompts": len(rows), "rejected_answers": 0}


def _records(
    config: DataBuildConfig,
    rows: list[PromptRow],
    indices: list[int],
    pattern: re.Pattern | None,
    cache: Path,
) -> list[dict[str, Any]]:
    """Every stage for the prompts at ``indices`` (the whole input, or one round of selection)."""
    samples = _sample_all(config, rows, indices, cache)
    classes, unreadable = [], []
    for row, row_samples in zip(rows, samples, strict=True):
        entries, missing = answer_classes(
            row_samples,
            row,
            extract=config.extract,
            pattern=pattern,
            classifier=config.classifier,
            threshold=config.classifier_threshold,
        )
        check_validity(
            entries,
            row,
            valid_set_filters=config.valid_set_filters,
            agreement=config.agreement,
            min_count=config.min_count,
            min_teachers=config.min_teachers,
        )
        classes.append(entries)
        unreadable.append(missing)
    if config.judge is not None:
        _judge_all(config, rows, classes, cache)
    kept = [[e for e in entries if e.kept] for entries in classes]
    probs = _teacher_probs(config, rows, kept, cache) if config.weights == "teacher" else [None] * len(rows)
    records = []
    for row, entries, good, p, missing in zip(rows, classes, kept, probs, unreadable, strict=True):
        chosen, weights, cut = (
            class_weights(good, config.weights, teacher_probs=p, temper=config.temper, max_k=config.max_k)
            if good
            else ([], [], [])
        )
        records.append(_row_record(row, entries, chosen, weights, cut, missing, config))
    return records


def _summary(records: list[dict[str, Any]], config: DataBuildConfig, seconds: float) -> dict[str, Any]:
    built = [r for r in records if r["references"]]
    known = [r["known"] for r in built if "known" in r]
    reasons: dict[str, int] = {}
    for record in records:
        for rejected in record["rejected"]:
            for reason in rejected["reasons"]:
                kind = reason.split(" ")[0]
                reasons[kind] = reasons.get(kind, 0) + 1
    summary: dict[str, Any] = {
        "prompts": len(records),
        "rows": len(built),
        "teachers": [t.label for t in config.teachers],
        "judge": config.judge.label if config.judge else None,
        "samples": config.samples,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "weights": config.weights,
        "extract": config.extract,
        "temper": config.temper,
        "max_k": config.max_k,
        "agreement": {"min_count": config.min_count, "min_teachers": config.min_teachers}
        if config.agreement
        else None,
        "references_mean": float(np.mean([len(r["references"]) for r in built])) if built else 0.0,
        "entropy_bits_mean": float(np.mean([r["entropy_bits"] for r in built])) if built else math.nan,
        "rejected_answers": sum(len(r["rejected"]) for r in records),
        "rejected_by_reason": reasons,
        "unreadable_samples": sum(sum(r["unreadable"].values()) for r in records),
        "wall_seconds": seconds,
        "seconds_per_100_prompts": 100 * seconds / max(len(records), 1),
    }
    if known:
        summary["known_valid_set"] = {
            "rows": len(known),
            "references_valid": sum(k["references_valid"] for k in known)
            / sum(k["references"] for k in known),
            "mass_valid": float(np.mean([k["mass_valid"] for k in known])),
            "samples_valid": sum(k["answers_valid"] for k in known)
            / max(sum(k["answers"] for k in known), 1),
        }
    return summary
