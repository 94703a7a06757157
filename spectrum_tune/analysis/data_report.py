"""``spectrum-tune data-report``: how diverse is a training set (multi-reference or plain SFT)?

Writes ``report.md``, ``report.json`` and ``plots/*.png`` (and ``selected.jsonl`` with ``--select``).
One *row* is one training context with its references (``load_multiref``'s grouping), or one text
with ``--text-field``; its *text* is the prompt (all message contents) followed by its references,
one per line. Measures (definitions in ``docs/analysis.md``):

* rows, references per row, normalised target entropy ``H(w) / ln K`` per row;
* exact duplicates (same prompt and same reference set, order ignored) and near-duplicates (TF-IDF
  character 2-4-gram cosine >= 0.9 with an *earlier* row; exact duplicates count as near ones).
  Up to ``--exact-limit`` rows every pair is checked; above it MinHash-LSH over the same n-gram sets
  proposes candidates (64 seeded hash permutations, 16 bands of 4: a pair with n-gram Jaccard 0.7
  becomes a candidate with probability 0.99, at 0.5 with 0.64) and each candidate is verified with
  the exact cosine, so no false positive is reported but a few near-duplicates can be missed;
* Vendi score of TF-IDF embeddings (:func:`spectrum_tune.evaluation.metrics.embed_texts`) on a seeded
  subsample of fixed size (Vendi is an effective *count*, so a fixed size keeps datasets comparable);
* with ``--model``: G-Vendi, the Vendi score of per-example loss-gradient features, and k-means
  clusters of those features (see :func:`gradient_features`), on a seeded subsample;
* with ``--select N``: the N rows picked by farthest-point traversal on the TF-IDF features.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_json_atomic, write_text_atomic
from .duplicates import CharTfidf, exact_duplicates, near_duplicates
from .gradients import gradient_features
from .rows import NGRAMS, Rows, load_rows, row_text
from .selection import farthest_point_select, kmeans

__all__ = ["DataReportOptions", "render_data_report", "run_data_report"]


@dataclass
class DataReportOptions:
    """Everything ``spectrum-tune data-report`` takes (see ``--help``)."""

    data: list[str]
    out: Path
    text_field: str | None = None
    model: str | None = None
    select: int | None = None
    seed: int = 0
    vendi_sample: int = 1000
    grad_sample: int = 512
    grad_dim: int = 256
    lora_rank: int = 8
    clusters: int = 8
    near_dup_threshold: float = 0.9
    exact_limit: int = 5000
    max_length: int = 512
    batch_size: int = 16
    progress: bool = True
    wall: dict[str, float] = field(default_factory=dict)


def _subsample(n: int, size: int, seed: int) -> np.ndarray:
    """Seeded sample of ``size`` row indices (all rows, in order, when there are no more)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {
        "mean": float(arr.mean()),
        "median": float(np.median(arr)),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def _text_vendi(texts: Sequence[str], indices: np.ndarray) -> float:
    from ..evaluation.metrics import embed_texts, vendi_score

    return vendi_score(embed_texts([texts[i] for i in indices], ngram_range=NGRAMS))


def _histogram(path: Path, title: str, xlabel: str, values: Sequence[float], bins: Any) -> Path:
    from ..evaluation.render import new_figure, save_figure

    figure = new_figure(6.0, 3.2)
    ax = figure.subplots()
    ax.hist([v for v in values if not math.isnan(v)], bins=bins, color="tab:blue", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title, fontsize=10)
    return save_figure(figure, path)


def _gradient_section(options: DataReportOptions, rows: Rows, progress: bool) -> dict[str, Any]:
    from ..evaluation.metrics import vendi_score
    from ..models import load_model, load_tokenizer

    tokenizer = load_tokenizer(options.model)
    model = load_model(options.model)
    indices = _subsample(len(rows), options.grad_sample, options.seed)
    features = gradient_features(
        model,
        tokenizer,
        rows,
        indices,
        dim=options.grad_dim,
        rank=options.lora_rank,
        seed=options.seed,
        batch_size=options.batch_size,
        max_length=options.max_length,
        progress=progress,
    )
    labels, centers = kmeans(features, options.clusters, seed=options.seed)
    k = len(centers)
    clusters = []
    for j in range(k):
        members = np.flatnonzero(labels == j)
        nearest = members[np.argsort(((features[members] - centers[j]) ** 2).sum(1))[:3]]
        share = members.size / len(indices)
        clusters.append(
            {
                "cluster": j,
                "size": int(members.size),
                "share": share,
                "over_representation": share * k,
                "examples": [
                    row_text(rows.prompts[indices[i]], rows.references[indices[i]])[:160] for i in nearest
                ],
            }
        )
    clusters.sort(key=lambda c: -c["share"])
    return {
        "g_vendi": vendi_score(features),
        "n": len(indices),
        "subsample": bool(len(indices) < len(rows)),
        "dim": options.grad_dim,
        "lora_rank": options.lora_rank,
        "parameters": "B of a fresh seeded LoRA on the last MLP down-projection",
        "k": k,
        "clusters": clusters,
        "over_represented": [c["cluster"] for c in clusters if c["share"] > 1.0 / k],
    }


def run_data_report(options: DataReportOptions) -> dict[str, Any]:
    """Compute every measure, write report.json / report.md / plots (/ selected.jsonl); return the report."""
    wall = options.wall
    start = time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        wall[name] = round(now - since, 3)
        return now

    rows = load_rows(options.data, options.text_field)
    texts = rows.texts()
    n = len(rows)
    t = lap("load", start)
    from ..evaluation.metrics import normalized_entropy

    ref_counts = [len(r) for r in rows.references]
    entropy = [normalized_entropy(counts=w) if w else math.nan for w in rows.weights]
    duplicate, groups = exact_duplicates(rows)
    t = lap("stats", t)
    tfidf = CharTfidf(texts, progress=options.progress)
    near = near_duplicates(
        texts, options.near_dup_threshold, options.exact_limit, options.seed, tfidf, options.progress
    )
    mask = near["mask"] | duplicate
    t = lap("near_duplicates", t)
    vendi_indices = _subsample(n, options.vendi_sample, options.seed)
    report: dict[str, Any] = {
        "schema_version": 1,
        "data": list(options.data),
        "text_field": options.text_field,
        "rows": n,
        "references": {
            "total": int(sum(ref_counts)),
            **_stats(ref_counts),
            "single_reference_share": float(np.mean([c == 1 for c in ref_counts])),
            "histogram": {str(k): v for k, v in sorted(Counter(ref_counts).items())},
        },
        "target_entropy": {
            **_stats(entropy),
            "multi_reference_mean": _stats([e for e, c in zip(entropy, ref_counts, strict=True) if c > 1])[
                "mean"
            ],
        },
        "duplicates": {
            "exact_rows": int(duplicate.sum()),
            "exact_rate": float(duplicate.mean()),
            "near_rows": int(mask.sum()),
            "near_rate": float(mask.mean()),
            "threshold": options.near_dup_threshold,
            "method": near["method"],
            "examples": [
                {"earlier": texts[i][:120], "later": texts[j][:120], "cosine": c}
                for i, j, c in near["pairs"][:5]
            ],
        },
        "text_vendi": {
            "vendi": _text_vendi(texts, vendi_indices),
            "n": len(vendi_indices),
            "subsample": bool(len(vendi_indices) < n),
            "embedding": "tfidf-char-2-4",
        },
    }
    report["text_vendi"]["vendi_per_row"] = report["text_vendi"]["vendi"] / len(vendi_indices)
    t = lap("text_vendi", t)
    if options.model:
        report["gradient"] = _gradient_section(options, rows, options.progress)
        t = lap("gradient", t)
    if options.select:
        report["select"] = _select(options, rows, tfidf, texts, groups)
        t = lap("select", t)
    plots = options.out / "plots"
    paths = [
        _histogram(
            plots / "references_per_row.png",
            "references per row",
            "references",
            ref_counts,
            bins=np.arange(0.5, max(ref_counts) + 1.5) if max(ref_counts) <= 60 else 40,
        ),
        _histogram(
            plots / "target_entropy.png",
            "normalised target entropy per row (K > 1)",
            "H(w) / ln K",
            [e for e, c in zip(entropy, ref_counts, strict=True) if c > 1],
            bins=np.linspace(0, 1, 21),
        ),
    ]
    if "gradient" in report:
        from ..evaluation.render import bar_chart

        clusters = report["gradient"]["clusters"]
        paths.append(
            bar_chart(
                plots / "gradient_clusters.png",
                "gradient k-means: share x k (1 = uniform)",
                [f"cluster {c['cluster']} ({c['size']})" for c in clusters],
                [("share x k", [c["over_representation"] for c in clusters], None)],
            )
        )
    report["plots"] = [str(p.relative_to(options.out)) for p in paths]
    lap("plots", t)
    wall["total"] = round(time.perf_counter() - start, 3)
    report["wall_seconds"] = wall
    write_json_atomic(options.out / "report.json", report)
    write_text_atomic(options.out / "report.md", render_data_report(report))
    return report


def _select(
    options: DataReportOptions, rows: Rows, tfidf: CharTfidf, texts: list[str], groups: np.ndarray
) -> dict[str, Any]:
    """Farthest-point subset on TF-IDF features; writes selected.jsonl; compares with a random subset."""
    matrix = tfidf.transform(texts, dtype=np.float32)
    chosen = farthest_point_select(matrix, options.select, groups, options.seed, options.progress)
    lines = [json.dumps(rows.row(i), ensure_ascii=False) for i in chosen]
    path = write_text_atomic(options.out / "selected.jsonl", "\n".join(lines) + "\n")
    random_rows = _subsample(len(rows), len(chosen), options.seed + 1)
    size = min(len(chosen), options.vendi_sample)  # same fixed-size Vendi as the whole-data figure
    return {
        "n": len(chosen),
        "path": path.name,
        "method": "farthest-point on TF-IDF char 2-4-gram features (cosine distance)",
        "distinct_rows": int(np.unique(groups[chosen]).size),
        "text_vendi": _text_vendi(texts, np.asarray(chosen[:size])),
        "random_text_vendi": _text_vendi(texts, random_rows[:size]),
        "vendi_n": size,
    }


def render_data_report(report: dict[str, Any]) -> str:
    """report.md for one dataset."""
    from ..evaluation.render import fmt, markdown_table

    refs, ent, dup, vendi = (
        report["references"],
        report["target_entropy"],
        report["duplicates"],
        report["text_vendi"],
    )
    lines = [
        "# spectrum-tune data report",
        "",
        f"- data: {', '.join(f'`{d}`' for d in report['data'])}"
        + (f" (text field `{report['text_field']}`)" if report["text_field"] else ""),
        "- wall seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report["wall_seconds"].items()),
        "",
        markdown_table(
            ["measure", "value", "meaning"],
            [
                [
                    "rows",
                    str(report["rows"]),
                    "training contexts (rows with one prompt grouped by the loader)",
                ],
                ["references", str(refs["total"]), "valid outputs over all rows"],
                [
                    "references per row (mean / median / max)",
                    f"{fmt(refs['mean'], 2)} / {fmt(refs['median'], 1)} / {fmt(refs['max'], 0)}",
                    "K",
                ],
                ["single-reference rows", fmt(refs["single_reference_share"]), "ordinary SFT rows"],
                [
                    "target entropy (mean, all / K > 1)",
                    f"{fmt(ent['mean'])} / {fmt(ent['multi_reference_mean'])}",
                    "H(w)/ln K: 1 = uniform",
                ],
                [
                    "exact-duplicate rate",
                    f"{fmt(dup['exact_rate'])} ({dup['exact_rows']} rows)",
                    "rows repeating an earlier prompt + reference set",
                ],
                [
                    f"near-duplicate rate (cos >= {dup['threshold']})",
                    f"{fmt(dup['near_rate'])} ({dup['near_rows']} rows)",
                    f"TF-IDF char 2-4-gram, {dup['method']}",
                ],
                [
                    f"text Vendi (n = {vendi['n']})",
                    f"{fmt(vendi['vendi'], 2)} ({fmt(vendi['vendi_per_row'])} per row)",
                    "effective number of distinct rows"
                    + (" (seeded subsample)" if vendi["subsample"] else ""),
                ],
            ],
        ),
    ]
    if dup["examples"]:
        lines += ["", "Near-duplicate examples (earlier → later, cosine):", ""]
        lines += [f"- `{e['earlier']!r}` → `{e['later']!r}` ({e['cosine']:.3f})" for e in dup["examples"]]
    grad = report.get("gradient")
    if grad:
        lines += [
            "",
            "## Gradient diversity (G-Vendi)",
            "",
            f"G-Vendi {fmt(grad['g_vendi'], 2)} over n = {grad['n']} rows"
            f"{' (seeded subsample)' if grad['subsample'] else ''}: Vendi score of L2-normalised per-example "
            f"loss gradients ({grad['parameters']}, rank {grad['lora_rank']}), Rademacher-projected to "
            f"{grad['dim']} dimensions. k-means with k = {grad['k']}; share × k > 1 is over-represented.",
            "",
            markdown_table(
                ["cluster", "rows", "share", "share × k", "examples"],
                [
                    [
                        str(c["cluster"]),
                        str(c["size"]),
                        fmt(c["share"]),
                        fmt(c["over_representation"], 2),
                        "<br>".join(f"`{e[:80]!r}`" for e in c["examples"]),
                    ]
                    for c in grad["clusters"]
                ],
            ),
        ]
    select = report.get("select")
    if select:
        lines += [
            "",
            "## Selection",
            "",
            f"`{select['path']}`: {select['n']} rows ({select['distinct_rows']} distinct) by "
            f"{select['method']}. "
            f"Text Vendi of the first {select['vendi_n']}: {fmt(select['text_vendi'], 2)} "
            f"(a seeded random subset of the same size: {fmt(select['random_text_vendi'], 2)}).",
        ]
    lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in report["plots"])]
    return "\n".join(lines) + "\n"
