"""Public distributions as training rows: GlobalOpinionQA's train questions and synthetic draws.

``spectrum-tune data-build public:NAME --out DIR`` writes ``DIR/rows.jsonl`` (no teacher needed):

* ``globalopinionqa`` (or its Hub id ``Anthropic/llm_global_opinions``): per train question
  (:func:`spectrum_tune.evaluation.benchmarks.global_opinions.question_split`; the eval loaders read
  only the test questions) one row per country (the prompt names it: steerable pluralism) and one
  pooled row (the mean of the countries' shares); references are the option letters, weights the
  shares;
* synthetic distributions with stated parameters (seeded): ``coin`` (heads with p),
  ``urn`` (coloured balls, weights the counts), ``poisson`` (mean lambda, support cut where the
  tail mass is below 0.001, renormalised), ``zipf`` (ranks 1..n, weight k^-s), ``uniform`` (whole
  numbers a..b); ``synthetic`` mixes the five.

``render="multiref"`` gives prompt/references/weights rows (the exact target); ``"incontext"`` gives
the Spectrum Tuning format: the country (or the stated parameters) as the description and
``outputs`` i.i.d. draws from the target. Every row's ``metadata`` names its source and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import SpectrumError
from ..evaluation.benchmarks.global_opinions import HUB_ID, question_prompt, questions

__all__ = ["PUBLIC_SOURCES", "RENDERS", "public_rows"]

SYNTHETIC = ("coin", "urn", "poisson", "zipf", "uniform")
PUBLIC_SOURCES = ("globalopinionqa", *SYNTHETIC, "synthetic")
RENDERS = ("multiref", "incontext")
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "orange", "purple")
POISSON_TAIL = 1e-3


def _coin(rng: np.random.Generator) -> tuple[str, list[str], list[float], dict[str, Any]]:
    p = round(float(rng.uniform(0.05, 0.95)), 2)
    text = f"A coin lands heads with probability {p}. Flip it once. Answer heads or tails."
    return text, ["heads", "tails"], [p, 1 - p], {"p_heads": p}


def _urn(rng: np.random.Generator) -> tuple[str, list[str], list[float], dict[str, Any]]:
    colours = [str(c) for c in rng.choice(COLOURS, size=int(rng.integers(2, 6)), replace=False)]
    counts = [int(c) for c in rng.integers(1, 10, size=len(colours))]
    listed = ", ".join(f"{n} {c}" for n, c in zip(counts, colours, strict=True))
    text = f"An urn holds {listed} balls. Draw one ball at random. Answer with its colour."
    parameters = {"counts": dict(zip(colours, counts, strict=True))}
    return text, colours, [n / sum(counts) for n in counts], parameters


def _poisson(rng: np.random.Generator) -> tuple[str, list[str], list[float], dict[str, Any]]:
    mean = round(float(rng.uniform(0.5, 8.0)), 1)
    pmf = []
    k = 0
    while sum(pmf) < 1 - POISSON_TAIL:
        pmf.append(math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)))
        k += 1
    text = f"Draw a whole number from a Poisson distribution with mean {mean}. Answer with the number."
    return text, [str(i) for i in range(k)], [p / sum(pmf) for p in pmf], {"mean": mean, "support_max": k - 1}


def _zipf(rng: np.random.Generator) -> tuple[str, list[str], list[float], dict[str, Any]]:
    n, s = int(rng.integers(3, 11)), round(float(rng.uniform(0.5, 2.0)), 2)
    raw = [k**-s for k in range(1, n + 1)]
    text = (
        f"Draw a rank from 1 to {n} where rank k has probability proportional to 1/k^{s} "
        "(a Zipf distribution). Answer with the rank."
    )
    return text, [str(k) for k in range(1, n + 1)], [r / sum(raw) for r in raw], {"n": n, "exponent": s}


def _uniform(rng: np.random.Generator) -> tuple[str, list[str], list[float], dict[str, Any]]:
    low = int(rng.integers(0, 51))
    high = low + int(rng.integers(1, 21))
    text = (
        f"Pick a whole number from {low} to {high} (inclusive), uniformly at random. Answer with the number."
    )
    size = high - low + 1
    return text, [str(k) for k in range(low, high + 1)], [1 / size] * size, {"low": low, "high": high}


Draw = tuple[str, list[str], list[float], dict[str, Any]]
GENERATORS: dict[str, Callable[[np.random.Generator], Draw]] = {
    "coin": _coin,
    "urn": _urn,
    "poisson": _poisson,
    "zipf": _zipf,
    "uniform": _uniform,
}


def _row(
    description: str,
    prompt: Any,
    references: list[str],
    weights: list[float],
    metadata: dict[str, Any],
    render: str,
    outputs: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    if render == "incontext":
        draws = rng.choice(len(references), size=outputs, p=np.asarray(weights) / sum(weights))
        return {"description": description, "outputs": [references[i] for i in draws], "metadata": metadata}
    return {
        "prompt": prompt,
        "references": references,
        "weights": [float(w) for w in weights],
        "metadata": metadata,
    }


def _synthetic(
    kind: str, count: int, render: str, outputs: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        text, references, weights, parameters = GENERATORS[kind](rng)
        metadata = {"source": f"synthetic:{kind}", "distribution": kind, "parameters": parameters}
        rows.append(
            _row(
                text, [{"role": "user", "content": text}], references, weights, metadata, render, outputs, rng
            )
        )
    return rows


def _opinions(
    max_items: int | None, render: str, outputs: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    rows = []
    for where, question, options, shares in questions(max_items, split="train"):
        letters = [chr(65 + i) for i in range(len(options))]
        listed = "; ".join(f"{letter}. {option}" for letter, option in zip(letters, options, strict=True))
        targets = [*shares.items(), (None, list(np.mean(list(shares.values()), axis=0)))]
        for country, target in targets:
            who = f"people in {country}" if country else "people across the surveyed countries"
            description = f"Survey answers of {who} to: {question.strip()} Options: {listed}"
            metadata = {"source": f"hub:{HUB_ID} {where}", "split": "train", "country": country or "pooled"}
            rows.append(
                _row(
                    description,
                    question_prompt(question, options, country),
                    letters,
                    target,
                    metadata,
                    render,
                    outputs,
                    rng,
                )
            )
    return rows


def public_rows(
    name: str, *, rows: int | None = None, seed: int = 0, render: str = "multiref", outputs: int = 16
) -> list[dict[str, Any]]:
    """Training rows of the public source ``name`` (module docstring): ``rows`` synthetic rows (100 by
    default; ``synthetic`` splits them over the five kinds) or at most ``rows`` GlobalOpinionQA train
    questions (each giving a row per country and a pooled row)."""
    name = "globalopinionqa" if name == HUB_ID else name  # by its Hub id too
    if name not in PUBLIC_SOURCES:
        raise SpectrumError(f"unknown public source '{name}' (use {', '.join(PUBLIC_SOURCES)})")
    if render not in RENDERS:
        raise SpectrumError(f"--render must be one of {', '.join(RENDERS)}, not '{render}'")
    rng = np.random.default_rng(seed)
    if name == "globalopinionqa":
        return _opinions(rows, render, outputs, rng)
    if name == "synthetic":
        count = rows or 100
        share = [count // len(SYNTHETIC) + (i < count % len(SYNTHETIC)) for i in range(len(SYNTHETIC))]
        parts = [_synthetic(kind, n, render, outputs, rng) for kind, n in zip(SYNTHETIC, share, strict=True)]
        return [row for part in parts for row in part]
    return _synthetic(name, rows or 100, render, outputs, rng)
