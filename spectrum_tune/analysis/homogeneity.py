"""How alike several models are: cross-model homogeneity on the open tasks their eval runs share.

Mode collapse has a population-level twin: different models (or seeds, or tuning recipes) collapse
onto the *same* answers. This module measures that from ``results.json`` files, pairwise, per item,
then averaged per task (mean over items) and overall (mean over tasks), as the harness does.

Pairwise metrics for models A and B on one item (``counts`` = normalised answer -> count):

* ``js``: Jensen-Shannon divergence (nats, in [0, ln 2]) between the two sample distributions over
  the union of answers either produced (all samples, valid or not: the output distribution);
  ``score_js``: the same between score-mode ``q`` vectors (same references). Symmetric.
* ``homogeneity = 1 - js / ln 2``: 1 for identical distributions, 0 for disjoint supports.
* ``top1``: 1 if the most frequent answers match, else 0 (ties broken by answer text). Symmetric.
* ``cross_coverage[A, B]``: share of A's valid samples whose answer B also produced. Asymmetric.
* ``verbatim[A, B]``: share of B's generations (the first 10 raw samples kept in results.json) that
  appear verbatim (whitespace-stripped) among A's generations. Asymmetric.
* ``cross_bleu[A, B]``: mean sentence BLEU (0-100, sacrebleu, as in ``metrics.self_bleu``) of each of
  B's generations against A's generations as references. Asymmetric.

Which samples: ``counts`` (the normalised whole generations) by default; when every run recorded
``counts_extracted`` for a task (tasks with ``extract``), those, so a chat model's "Sure! Texas is a
state." and a base model's "Texas" are the same answer; samples nothing was read from (the ``""``
entry) are left out there, else two models that mostly fail to answer would look alike for it.
Which items: matched by prompt; when the runs share no prompt (a chat and a plain-text version of
the same task), by position, but only if every position lists the same references and validator in
every run -- otherwise the task is left out.
Each task records ``matched_by`` ("prompt" | "position") and ``counts`` (the key it read).

Validity: an answer is valid if it is one of the item's references; for an ``int_range`` validator
(``{"min", "max"}`` in results.json) if it is an integer in range; items without either (free text,
other validators, whose spec results.json does not fully keep) count every sample as valid.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.metrics import js_divergence, normalize_answer

__all__ = [
    "OPEN_KINDS",
    "counts_js",
    "cross_bleu",
    "cross_coverage",
    "homogeneity",
    "homogeneity_markdown",
    "homogeneity_section",
    "item_matrices",
    "pairwise",
    "top1",
    "top1_agreement",
    "verbatim_overlap",
]

OPEN_KINDS = ("open", "distribution", "freetext")
"""Task kinds with many acceptable answers; closed tasks are left out (agreeing there is correct)."""
LN2 = math.log(2.0)
MATRICES = ("js", "homogeneity", "score_js", "top1", "cross_coverage", "verbatim", "cross_bleu")
SYMMETRIC = {"js", "homogeneity", "score_js", "top1"}
_INTEGER = re.compile(r"[+-]?\d+")


# --------------------------------------------------------------------------------------------
# Pairwise metrics (pure)
# --------------------------------------------------------------------------------------------


def counts_js(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """JS divergence (nats) of two count maps over the union of their keys; nan if either is empty."""
    support = sorted(set(a) | set(b))
    p = np.array([a.get(key, 0) for key in support], dtype=float)
    q = np.array([b.get(key, 0) for key in support], dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return js_divergence(p, q)


def homogeneity(js: float) -> float:
    """``1 - js / ln 2``: 1 = identical distributions, 0 = disjoint supports."""
    return math.nan if math.isnan(js) else 1.0 - js / LN2


def top1(counts: Mapping[str, float]) -> str | None:
    """Most frequent answer (ties broken by answer text, so identical counts give the same answer)."""
    positive = [(-count, answer) for answer, count in counts.items() if count > 0]
    return min(positive)[1] if positive else None


def top1_agreement(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """1.0 if the most frequent answers match, 0.0 if not, nan if either has no sample."""
    first, second = top1(a), top1(b)
    return math.nan if first is None or second is None else float(first == second)


def cross_coverage(
    a: Mapping[str, float], b: Mapping[str, float], is_valid: Callable[[str], bool] | None = None
) -> float:
    """Share of A's valid samples (counted with multiplicity) whose answer B also produced."""
    valid = {answer: count for answer, count in a.items() if is_valid is None or is_valid(answer)}
    total = sum(valid.values())
    if total <= 0:
        return math.nan
    return sum(count for answer, count in valid.items() if b.get(answer, 0) > 0) / total


def verbatim_overlap(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of B's texts that appear verbatim (whitespace-stripped) among A's; nan if B is empty."""
    if not b:
        return math.nan
    seen = {text.strip() for text in a}
    return sum(text.strip() in seen for text in b) / len(b)


def cross_bleu(a: Sequence[str], b: Sequence[str]) -> float:
    """Mean sentence BLEU (0-100) of each of B's texts against all of A's as references.

    Same sacrebleu settings as :func:`spectrum_tune.evaluation.metrics.self_bleu` (``exp`` smoothing,
    ``effective_order``), so ``cross_bleu(x, x)`` is comparable with self-BLEU (it includes the text
    itself, hence 100 for identical sets). nan if either side is empty.
    """
    from sacrebleu.metrics import BLEU

    if not a or not b:
        return math.nan
    bleu = BLEU(effective_order=True)
    return float(np.mean([bleu.sentence_score(text, list(a)).score for text in b]))


def pairwise(values: Sequence[Any], metric: Callable[[Any, Any], float], symmetric: bool) -> np.ndarray:
    """``M[i, j] = metric(values[i], values[j])``; a symmetric metric is computed once per pair."""
    n = len(values)
    matrix = np.full((n, n), math.nan)
    for i in range(n):
        for j in range(i if symmetric else 0, n):
            matrix[i, j] = metric(values[i], values[j])
            if symmetric:
                matrix[j, i] = matrix[i, j]
    return matrix


# --------------------------------------------------------------------------------------------
# Items, tasks, runs
# --------------------------------------------------------------------------------------------


def _validity(item: Mapping[str, Any]) -> Callable[[str], bool] | None:
    """Validity test on normalised answers, or None when results.json cannot tell (all valid)."""
    if item.get("references"):
        listed = {normalize_answer(ref) for ref in item["references"]}
        return listed.__contains__
    spec = item.get("validator")
    if isinstance(spec, Mapping) and set(spec) == {"min", "max"}:
        low, high = spec["min"], spec["max"]
        return lambda answer: bool(_INTEGER.fullmatch(answer)) and low <= int(answer) <= high
    return None


def item_matrices(
    items: Sequence[Mapping[str, Any]], bleu: bool = True, counts_key: str = "counts"
) -> dict[str, np.ndarray]:
    """All pairwise matrices for one item as recorded by several runs (same prompt, same valid set);
    ``counts_key`` names the sample counts compared (``counts`` or ``counts_extracted``)."""
    samples = [item.get("sample") for item in items]
    result: dict[str, np.ndarray] = {}
    if all(s is not None for s in samples):
        counts = [s[counts_key] for s in samples]
        if counts_key == "counts_extracted":
            counts = [{answer: n for answer, n in c.items() if answer} for c in counts]
        generations = [s.get("generations") or [] for s in samples]
        is_valid = _validity(items[0])
        result["js"] = pairwise(counts, counts_js, True)
        result["homogeneity"] = np.vectorize(homogeneity, otypes=[float])(result["js"])
        result["top1"] = pairwise(counts, top1_agreement, True)
        result["cross_coverage"] = pairwise(counts, lambda a, b: cross_coverage(a, b, is_valid), False)
        if all(generations):
            result["verbatim"] = pairwise(generations, verbatim_overlap, False)
            if bleu:
                result["cross_bleu"] = pairwise(generations, cross_bleu, False)
    scores = [item.get("score") for item in items]
    refs = [tuple(item.get("references") or ()) for item in items]
    if all(s is not None and "q" in s for s in scores) and len(set(refs)) == 1:
        qs = [np.asarray(s["q"], dtype=float) for s in scores]
        result["score_js"] = pairwise(qs, js_divergence, True)
    return result


def _mean_matrices(groups: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Entry-wise nan-aware mean of each matrix over the groups that have it."""
    means = {}
    for key in MATRICES:
        stack = [group[key] for group in groups if key in group]
        if stack:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-nan cell stays nan
                means[key] = np.nanmean(np.stack(stack), axis=0)
    return means


def _prompt_key(item: Mapping[str, Any]) -> str:
    return json.dumps(item.get("prompt"), sort_keys=True)


def _valid_set_key(item: Mapping[str, Any]) -> str:
    return json.dumps([item.get("references") or [], item.get("validator")], sort_keys=True)


def _matched_items(tasks: Sequence[Mapping[str, Any]]) -> tuple[list[list[Mapping[str, Any]]], str]:
    """Items of one task across runs and how they were matched: by prompt (the n-th repeat of a
    prompt with the n-th), else by position when every position has the same valid set in every run
    (one task in two prompt styles), else none."""
    by_prompt = _matched_by_prompt(tasks)
    if by_prompt:
        return by_prompt, "prompt"
    columns = [task.get("items", []) for task in tasks]
    if len({len(items) for items in columns}) == 1 and all(
        len({_valid_set_key(item) for item in row}) == 1 for row in zip(*columns, strict=True)
    ):
        return [list(row) for row in zip(*columns, strict=True)], "position"
    return [], "none"


def _matched_by_prompt(tasks: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    keyed = []
    for task in tasks:
        seen: dict[str, int] = {}
        entries = {}
        for item in task.get("items", []):
            key = _prompt_key(item)
            seen[key] = seen.get(key, 0) + 1
            entries[(key, seen[key])] = item
        keyed.append(entries)
    shared = [key for key in keyed[0] if all(key in entries for entries in keyed[1:])]
    return [[entries[key] for entries in keyed] for key in shared]


def _off_diagonal_mean(matrix: np.ndarray) -> float | None:
    values = matrix[~np.eye(len(matrix), dtype=bool)]
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def _json_matrix(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in matrix]


def homogeneity_section(
    runs: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    plots_dir: str | Path | None = None,
    bleu: bool = True,
) -> dict[str, Any]:
    """Pairwise homogeneity per shared open task and overall (JSON-safe), plus heatmaps.

    ``overall`` averages each task's matrix over tasks; ``summary`` is the mean over ordered pairs of
    different runs (the off-diagonal mean) of each overall matrix. With ``plots_dir``, writes
    ``homogeneity_js.png`` and ``homogeneity_top1.png`` and lists them under ``plots``.
    """
    names = [
        name
        for name, task in runs[0]["tasks"].items()
        if task.get("kind") in OPEN_KINDS
        and all(run["tasks"].get(name, {}).get("status") == "ok" for run in runs)
        and task.get("status") == "ok"
    ]
    per_task: dict[str, dict[str, np.ndarray]] = {}
    n_items: dict[str, int] = {}
    how: dict[str, dict[str, str]] = {}
    for name in names:
        matched, matched_by = _matched_items([run["tasks"][name] for run in runs])
        extracted = all("counts_extracted" in (item.get("sample") or {}) for row in matched for item in row)
        counts_key = "counts_extracted" if matched and extracted else "counts"
        matrices = [item_matrices(items, bleu=bleu, counts_key=counts_key) for items in matched]
        if matched and any(matrices):
            per_task[name] = _mean_matrices(matrices)
            n_items[name] = len(matched)
            how[name] = {"matched_by": matched_by, "counts": counts_key}
    overall = _mean_matrices(list(per_task.values()))
    section: dict[str, Any] = {
        "labels": list(labels),
        "kinds": list(OPEN_KINDS),
        "tasks": {
            name: {
                "n_items": n_items[name],
                **how[name],
                "matrices": {key: _json_matrix(m) for key, m in mats.items()},
                "mean": {key: _off_diagonal_mean(m) for key, m in mats.items()},
            }
            for name, mats in per_task.items()
        },
        "overall": {key: _json_matrix(m) for key, m in overall.items()},
        "summary": {key: _off_diagonal_mean(m) for key, m in overall.items()},
        "plots": [],
    }
    if plots_dir is not None:
        from ..evaluation.render import save_figure

        titles = {
            "js": "pairwise JS divergence (nats), mean over open tasks",
            "top1": "top-1 answer agreement, mean over open tasks",
        }
        for key, title in titles.items():
            if key in overall:
                figure = _heatmap(overall[key], labels, title, vmax=LN2 if key == "js" else 1.0)
                section["plots"].append(str(save_figure(figure, Path(plots_dir) / f"homogeneity_{key}.png")))
    return section


def _heatmap(matrix: np.ndarray, labels: Sequence[str], title: str, vmax: float) -> Any:
    from ..evaluation.render import fmt, new_figure

    size = max(3.5, 0.7 * len(labels) + 2.0)
    figure = new_figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            fmt(float(value), 2),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value < 0.6 * vmax else "black",
        )
    figure.colorbar(image, ax=ax)
    ax.set_title(title, fontsize=9)
    return figure


HEADLINE = (
    ("homogeneity", "homogeneity (1 - JS/ln 2)"),
    ("js", "sample JS"),
    ("score_js", "score JS"),
    ("top1", "top-1 agreement"),
    ("cross_coverage", "cross-coverage"),
    ("verbatim", "verbatim overlap"),
    ("cross_bleu", "cross-BLEU"),
)


def _cells(means: Mapping[str, Any], present: Sequence[tuple[str, str]]) -> list[str]:
    from ..evaluation.render import fmt

    return [fmt(means.get(key), 1 if key == "cross_bleu" else 3) for key, _ in present]


def _read_as(task: Mapping[str, Any]) -> str:
    counts = "extracted" if task.get("counts") == "counts_extracted" else "whole"
    return f"{task.get('matched_by', 'prompt')}, {counts}"


def homogeneity_markdown(section: Mapping[str, Any]) -> str:
    """The compare.md section: per-task means over model pairs, then the overall pairwise matrices."""
    from ..evaluation.render import fmt, markdown_table

    labels = section["labels"]
    lines = [
        "## Cross-model homogeneity",
        "",
        f"Open tasks ({', '.join(section['kinds'])}) that every run completed. Cells are means over "
        "ordered pairs of different runs (then items, then tasks). Higher homogeneity, top-1 agreement, "
        "cross-coverage, verbatim overlap and cross-BLEU, or lower JS, mean the models answer alike.",
    ]
    if not section["tasks"]:
        return "\n".join([*lines, "", "No shared open task with samples or scores."]) + "\n"
    present = [(key, title) for key, title in HEADLINE if key in section["summary"]]
    tasks = section["tasks"].items()
    rows = [
        [name, str(task["n_items"]), _read_as(task), *_cells(task["mean"], present)] for name, task in tasks
    ]
    rows.append(["**overall**", "", "", *_cells(section["summary"], present)])
    header = ["task", "items", "matched, counts", *(title for _, title in present)]
    lines += ["", markdown_table(header, rows)]
    for key, title in present:
        matrix = section["overall"][key]
        note = "" if key in SYMMETRIC else " (row A, column B)"
        digits = 1 if key == "cross_bleu" else 3
        body = [[label, *(fmt(v, digits) for v in row)] for label, row in zip(labels, matrix, strict=True)]
        lines += ["", f"### {title}{note}", "", markdown_table(["", *labels], body)]
    return "\n".join(lines) + "\n"
