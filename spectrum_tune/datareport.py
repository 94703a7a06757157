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
* Vendi score of TF-IDF embeddings (:func:`spectrum_tune.metrics.embed_texts`) on a seeded subsample
  of fixed size (Vendi is an effective *count*, so a fixed size keeps datasets comparable);
* with ``--model``: G-Vendi, the Vendi score of per-example loss-gradient features, and k-means
  clusters of those features (see :func:`gradient_features`), on a seeded subsample;
* with ``--select N``: the N rows picked by farthest-point traversal on the TF-IDF features.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from .errors import SpectrumError
from .io import write_json_atomic, write_text_atomic

__all__ = [
    "CharTfidf",
    "DataReportOptions",
    "cmd_data_report",
    "exact_duplicates",
    "farthest_point_select",
    "gradient_features",
    "kmeans",
    "minhash_signatures",
    "near_duplicates",
    "row_text",
    "run_data_report",
]

DATA_REPORT_USAGE = (
    "spectrum-tune data-report DATA [DATA ...] [--text-field F] [--model PATH] [--select N] [--seed S] "
    "[--vendi-sample N] [--grad-sample N] [--grad-dim D] [--clusters K] [--near-dup-threshold T] --out DIR"
)
NGRAMS = (2, 4)  # the same character n-grams as the harness's TF-IDF embeddings
CHUNK = 4096  # rows per chunk in the streaming passes (bounds peak memory)
MINHASH_PERMS = 64
MINHASH_BANDS = 16
MAX_BUCKET = 4096  # LSH buckets larger than this are verified in sorted windows of this size
_PRIME = (1 << 31) - 1  # Mersenne prime of the hash family (a * x + b) mod p; a * x stays below 2^62


# --------------------------------------------------------------------------------------------
# Rows and texts
# --------------------------------------------------------------------------------------------


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        return "\n".join(message["content"] for message in prompt)
    return str(prompt or "")


def row_text(prompt: Any, references: Sequence[str]) -> str:
    """The text a row is compared by: prompt contents, then one reference per line."""
    return "\n".join([_prompt_text(prompt), *references]).strip("\n")


@dataclass
class Rows:
    """The dataset as parallel lists (the report touches every row several times)."""

    prompts: list[Any]
    references: list[list[str]]
    weights: list[list[float]]
    raw: list[dict[str, Any]] | None = None  # --text-field: the original objects, for selected.jsonl

    def __len__(self) -> int:
        return len(self.prompts)

    def texts(self) -> list[str]:
        return [row_text(p, r) for p, r in zip(self.prompts, self.references, strict=True)]

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` in the training schema (what ``tokenize_group`` and ``selected.jsonl`` take)."""
        if self.raw is not None:
            return self.raw[i]
        return {"prompt": self.prompts[i], "references": self.references[i], "weights": self.weights[i]}


def load_rows(paths: Sequence[str], text_field: str | None = None) -> Rows:
    """Anything ``load_multiref`` accepts, or plain-text JSONL/JSON/Parquet with ``text_field``."""
    if text_field is None:
        from .data import load_multiref

        dataset = load_multiref(list(paths))
        rows = Rows(dataset["prompt"], dataset["references"], dataset["weights"])
        # in-context rows keep their outputs in the prompt messages and have no references
        return rows
    from .data import DataError, read_rows

    texts, raw = [], []
    for path in paths:
        for where, row in read_rows(path):
            text = row.get(text_field) if isinstance(row, dict) else None
            if not isinstance(text, str) or not text:
                raise DataError(where, f"field '{text_field}' must be a non-empty string")
            texts.append(text)
            raw.append(row)
    if not texts:
        raise SpectrumError(f"{', '.join(paths)}: no rows")
    return Rows([""] * len(texts), [[t] for t in texts], [[1.0]] * len(texts), raw=raw)


def _progress(iterable: Any, enabled: bool, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, **kwargs)


def _chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


# --------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------


def exact_duplicates(rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """``(is_duplicate, group)``: a row repeating an earlier row's prompt and reference set, and a
    group id per distinct row (first-seen order). Keys are 16-byte hashes, so memory stays small."""
    first: dict[bytes, int] = {}
    group = np.empty(len(rows), dtype=np.int64)
    for i, (prompt, refs) in enumerate(zip(rows.prompts, rows.references, strict=True)):
        key = json.dumps([prompt, sorted(refs)], sort_keys=True).encode()
        group[i] = first.setdefault(hashlib.blake2b(key, digest_size=16).digest(), len(first))
    is_duplicate = np.ones(len(rows), dtype=bool)
    is_duplicate[np.unique(group, return_index=True)[1]] = False
    return is_duplicate, group


class CharTfidf:
    """Sparse TF-IDF over character n-grams with idf from the whole dataset, built in chunks.

    Same analyzer and weighting as :func:`spectrum_tune.metrics.tfidf_char_embeddings` (whose
    dense matrix does not scale to large data): raw counts times ``ln((1 + n) / (1 + df)) + 1``,
    rows L2-normalised. ``tests/test_datareport.py`` checks the two agree.
    """

    def __init__(self, texts: Sequence[str], ngram_range: tuple[int, int] = NGRAMS, progress: bool = False):
        self.ngram_range = ngram_range
        self.vocab: dict[str, int] = {}
        df: list[int] = []
        for part in _progress(list(_chunks(len(texts))), progress, desc="n-gram vocabulary", unit="chunk"):
            for text in texts[part]:
                for gram in set(self._grams(text)):
                    index = self.vocab.setdefault(gram, len(self.vocab))
                    if index == len(df):
                        df.append(0)
                    df[index] += 1
        self.idf = np.log((1 + len(texts)) / (1 + np.asarray(df, dtype=float))) + 1.0

    def _grams(self, text: str) -> list[str]:
        from .metrics import _char_ngrams  # the harness's analyzer, so both TF-IDFs agree

        return _char_ngrams(text, self.ngram_range)

    def ids(self, text: str) -> np.ndarray:
        """Vocabulary ids of the text's n-grams (with repeats); unseen n-grams are dropped."""
        return np.array([self.vocab[g] for g in self._grams(text) if g in self.vocab], dtype=np.int64)

    def transform(self, texts: Sequence[str], dtype: Any = np.float64) -> scipy.sparse.csr_matrix:
        """L2-normalised TF-IDF rows (CSR, ``len(texts) x vocab``), built chunk by chunk."""
        blocks = [self._transform_chunk(texts[part], dtype) for part in _chunks(len(texts))]
        if len(blocks) == 1:
            return blocks[0]
        return scipy.sparse.vstack(blocks, format="csr") if blocks else scipy.sparse.csr_matrix((0, 0))

    def _transform_chunk(self, texts: Sequence[str], dtype: Any) -> scipy.sparse.csr_matrix:
        indices, data, indptr = [], [], [0]
        for text in texts:
            unique, counts = np.unique(self.ids(text), return_counts=True)
            weights = counts * self.idf[unique]
            indices.append(unique.astype(np.int32))
            data.append((weights / (np.linalg.norm(weights) or 1.0)).astype(dtype))
            indptr.append(indptr[-1] + unique.size)
        return scipy.sparse.csr_matrix(
            (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
            shape=(len(texts), len(self.vocab)),
        )


def minhash_signatures(
    tfidf: CharTfidf, texts: Sequence[str], perms: int = MINHASH_PERMS, seed: int = 0, progress: bool = False
) -> np.ndarray:
    """``(len(texts), perms)`` MinHash signatures of the texts' n-gram sets (seeded, deterministic).

    Hashes are ``(a * id + b) mod (2^31 - 1)`` of the n-gram's vocabulary id, vectorised per chunk
    with ``np.minimum.reduceat`` so the cost is numpy work, not a Python loop per n-gram.
    """
    rng = np.random.default_rng(seed)
    # a and b span the whole field: with small a the hash would keep the id order and every
    # permutation would pick the same (first-seen, i.e. template) n-gram
    a = rng.integers(1, _PRIME, size=perms, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=perms, dtype=np.uint64)
    signatures = np.empty((len(texts), perms), dtype=np.uint64)
    for part in _progress(list(_chunks(len(texts))), progress, desc="minhash", unit="chunk"):
        ids = [np.unique(tfidf.ids(text)) for text in texts[part]]
        ids = [x if x.size else np.zeros(1, dtype=np.int64) for x in ids]  # no n-gram: shared bucket
        flat = np.concatenate(ids).astype(np.uint64)
        starts = np.cumsum([0] + [x.size for x in ids[:-1]])
        for p in range(perms):
            # ids and a, b < 2^31 keep a * id + b below 2^63 (no overflow before the mod)
            hashed = (a[p] * flat + b[p]) % np.uint64(_PRIME)
            signatures[part, p] = np.minimum.reduceat(hashed, starts)
    return signatures


def _lsh_groups(signatures: np.ndarray, bands: int) -> Iterator[np.ndarray]:
    """Row indices sharing a band of the signature (candidate near-duplicate groups, size >= 2)."""
    width = signatures.shape[1] // bands
    for band in range(bands):
        block = np.ascontiguousarray(signatures[:, band * width : (band + 1) * width])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * width))).ravel()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        for members in np.split(order, cuts):
            if members.size > MAX_BUCKET:
                # templated data can make huge buckets; verify them in windows of rows with
                # similar whole signatures (sorted), bounding the cost at the price of recall
                members = members[np.lexsort(signatures[members].T[::-1])]
                yield from (np.sort(members[part]) for part in _chunks(members.size, MAX_BUCKET))
            elif members.size > 1:
                yield np.sort(members)


def _mark_later_neighbours(
    matrix: scipy.sparse.csr_matrix,
    members: np.ndarray,
    threshold: float,
    near: np.ndarray,
    pairs: list[tuple[int, int, float]],
) -> None:
    """Mark each member that has an earlier member at cosine >= threshold (blocks bound memory)."""
    for part in _chunks(len(members), 1024):
        sims = (matrix[part] @ matrix[: part.stop].T).toarray()
        for offset, row in enumerate(sims):
            j = part.start + offset
            earlier = np.flatnonzero(row[:j] >= threshold - 1e-9)
            if earlier.size:
                near[members[j]] = True
                if len(pairs) < 20:
                    pairs.append((int(members[earlier[0]]), int(members[j]), float(row[earlier[0]])))


def near_duplicates(
    texts: Sequence[str],
    threshold: float = 0.9,
    exact_limit: int = 5000,
    seed: int = 0,
    tfidf: CharTfidf | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Rows whose TF-IDF char-n-gram cosine with an earlier row is >= ``threshold``.

    Returns ``mask`` (bool per row), ``method`` (``all-pairs`` or ``minhash-lsh``) and up to 20
    example ``pairs`` ``(earlier, later, cosine)``. Identical texts are collapsed first, so only
    distinct texts are compared.
    """
    tfidf = tfidf or CharTfidf(texts, progress=progress)
    first: dict[str, int] = {}
    near = np.zeros(len(texts), dtype=bool)
    pairs: list[tuple[int, int, float]] = []
    for i, text in enumerate(texts):
        if first.setdefault(text, i) != i:
            near[i] = True
            if len(pairs) < 20:
                pairs.append((first[text], i, 1.0))
    distinct = np.array(sorted(first.values()), dtype=np.int64)
    unique_texts = [texts[i] for i in distinct]
    found = np.zeros(len(distinct), dtype=bool)
    if len(distinct) <= exact_limit:
        method = "all-pairs"
        groups: Iterator[np.ndarray] = iter([np.arange(len(distinct))])
        matrix = tfidf.transform(unique_texts)
    else:
        method = "minhash-lsh"
        signatures = minhash_signatures(tfidf, unique_texts, seed=seed, progress=progress)
        groups = _lsh_groups(signatures, MINHASH_BANDS)
        matrix = None
    local: list[tuple[int, int, float]] = []
    for members in _progress(groups, progress and method != "all-pairs", desc="verify", unit="group"):
        todo = (
            members if matrix is not None else members[: np.flatnonzero(~found[members]).max(initial=-1) + 1]
        )
        if todo.size < 2:
            continue  # every later member is already marked
        sub = matrix[todo] if matrix is not None else tfidf.transform([unique_texts[i] for i in todo])
        _mark_later_neighbours(sub, todo, threshold, found, local)
    near[distinct[found]] = True
    pairs += [(int(distinct[i]), int(distinct[j]), c) for i, j, c in local[: 20 - len(pairs)]]
    return {"mask": near, "method": method, "pairs": pairs}


# --------------------------------------------------------------------------------------------
# Gradient features (G-Vendi)
# --------------------------------------------------------------------------------------------


def _gradient_module(model: Any) -> Any:
    """The last MLP down-projection (or, failing that, the last Linear before the LM head).

    Being in the last block, everything after it is position-wise (residual, final norm, LM head),
    so its output gradient at a token depends on that token's loss only and back-propagation is
    cheap (it stops there; no parameter needs a gradient).
    """
    import torch

    head = model.get_output_embeddings()
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]
    down = [m for n, m in linears if n.endswith("down_proj")]
    if down:
        return down[-1]
    if not linears:
        raise SpectrumError("the model has no Linear layer to take gradients at")
    return linears[-1][1]


Sequence_ = tuple[int, list[int], list[int], float]


def _sequences(rows: Rows, indices: Sequence[int], tokenizer: Any, max_length: int) -> list[Sequence_]:
    """``(row, ids, loss_mask, coefficient)`` per reference: the spectrum loss with alpha = beta = 1
    (the weighted multi-reference NLL ``-sum_k w_k s_k``) divided by the mean completion length."""
    from .data import tokenize_group

    sequences = []
    for position, index in enumerate(indices):
        group = tokenize_group(rows.row(index), tokenizer, max_length)
        lengths = [sum(mask) for mask in group["completion_mask"]]
        scale = max(1.0, float(np.mean(lengths)))
        parts = zip(group["completion_ids"], group["completion_mask"], group["weights"], strict=True)
        for ids, mask, weight in parts:
            full = group["prompt_ids"] + ids
            loss_mask = [0] * len(group["prompt_ids"]) + list(mask)
            loss_mask[0] = 0  # the first token has nothing to be predicted from
            if any(loss_mask):
                sequences.append((position, full, loss_mask, weight / scale))
    return sequences


def gradient_features(
    model: Any,
    tokenizer: Any,
    rows: Rows,
    indices: Sequence[int],
    *,
    dim: int = 256,
    rank: int = 8,
    seed: int = 0,
    batch_size: int = 16,
    max_length: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """L2-normalised, randomly projected per-example loss gradients, shape ``(len(indices), dim)``.

    The parameter subset is a freshly initialised rank-``rank`` LoRA on the last MLP down-projection
    ``W`` (``W + B A``, ``A`` seeded Gaussian, ``B = 0``, as LESS / G-Vendi-style data selection do):
    at ``B = 0`` the model is unchanged and ``dL/dB = sum_t g_t (A x_t)^T`` (``g_t`` the gradient at
    the layer's output, ``x_t`` its input) while ``dL/dA = 0``. That gradient (``out x rank``) is
    projected with a seeded Rademacher matrix to ``dim`` and L2-normalised. The loss per row is the
    weighted multi-reference NLL over its references, scaled by the mean completion length.
    Per-example gradients of a whole batch come from one backward pass (the loss is a sum over
    examples and the layer's output gradient at a token only involves that token's loss).
    Deterministic given ``seed``.
    """
    import torch

    module = _gradient_module(model)
    generator = torch.Generator().manual_seed(seed)
    lora_a = torch.randn(rank, module.in_features, generator=generator) / math.sqrt(module.in_features)
    projection = torch.from_numpy(
        np.random.default_rng(seed).choice([-1.0, 1.0], size=(module.out_features * rank, dim))
        / math.sqrt(dim)
    ).float()
    captured: dict[str, torch.Tensor] = {}

    def hook(_module: Any, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        captured["x"] = inputs[0].detach().float()
        captured["y"] = output.detach().requires_grad_()  # a leaf: backward stops here
        return captured["y"]

    sequences = _sequences(rows, indices, tokenizer, max_length)
    features = torch.zeros(len(indices), dim)
    was_training = model.training
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    handle = module.register_forward_hook(hook)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    try:
        batches = list(_chunks(len(sequences), batch_size))
        for part in _progress(batches, progress, desc="gradients", unit="batch"):
            batch = sequences[part]
            width = max(len(ids) for _, ids, _, _ in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for _, ids, _, _ in batch])
            attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for _, ids, _, _ in batch])
            mask = torch.tensor([m + [0] * (width - len(m)) for _, _, m, _ in batch], dtype=torch.bool)
            coefficient = torch.tensor([c for _, _, _, c in batch])
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
            nll = -torch.where(mask[:, 1:], logps, 0.0).sum(dim=-1)
            (coefficient * nll).sum().backward()
            grad_b = torch.einsum("bto,btr->bor", captured["y"].grad.float(), captured["x"] @ lora_a.T)
            projected = grad_b.reshape(len(batch), -1) @ projection
            features.index_add_(0, torch.tensor([row for row, _, _, _ in batch]), projected)
    finally:
        handle.remove()
        for parameter, flag in zip(model.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
        model.train(was_training)
    array = features.double().numpy()
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


# --------------------------------------------------------------------------------------------
# k-means and selection
# --------------------------------------------------------------------------------------------


def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means (k-means++ init, Lloyd iterations): ``(labels, centers)``."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    k = max(1, min(k, n))
    centers = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() <= 0:
            break  # fewer distinct points than k
        centers.append(x[rng.choice(n, p=d2 / d2.sum())])
    c = np.asarray(centers)
    labels = np.zeros(n, dtype=np.int64)
    for step in range(iterations):
        distances = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None]
        new = np.argmin(distances, axis=1)
        if step > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(c)):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(axis=0)
    return labels, c


def farthest_point_select(
    matrix: scipy.sparse.csr_matrix | np.ndarray,
    n_select: int,
    groups: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = False,
) -> list[int]:
    """Greedy max-min (farthest-point) selection on L2-normalised rows, distance ``1 - cosine``.

    Starts from a seeded random row and repeatedly adds the row farthest from everything chosen
    (a 2-approximation of the max-min-distance subset). Rows of an already chosen ``groups`` id
    (exact duplicates) are only taken once every group is represented, so the result never repeats
    a row while distinct rows remain.
    """
    from tqdm.auto import tqdm

    n = matrix.shape[0]
    n_select = min(n_select, n)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if n_select <= 0:
        return []
    distance = np.full(n, np.inf)
    taken = np.zeros(n, dtype=bool)
    group_taken = np.zeros(int(groups.max()) + 1, dtype=bool)
    chosen = [int(np.random.default_rng(seed).integers(n))]
    with tqdm(total=n_select, initial=1, desc="select", unit="row", disable=not progress) as bar:
        while len(chosen) < n_select:
            last = chosen[-1]
            taken[last] = True
            group_taken[groups[last]] = True
            vector = matrix[last].toarray().ravel() if scipy.sparse.issparse(matrix) else matrix[last]
            distance = np.minimum(distance, np.clip(1.0 - np.asarray(matrix @ vector).ravel(), 0.0, None))
            # a row of a new group always beats a repeat: offset above the largest distance (2)
            score = distance + np.where(group_taken[groups], 0.0, 3.0)
            score[taken] = -np.inf
            chosen.append(int(np.argmax(score)))
            bar.update()
    return chosen


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


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
    from .metrics import embed_texts, vendi_score

    return vendi_score(embed_texts([texts[i] for i in indices], ngram_range=NGRAMS))


def _histogram(path: Path, title: str, xlabel: str, values: Sequence[float], bins: Any) -> Path:
    from .harness.report import _figure, _save

    figure = _figure(6.0, 3.2)
    ax = figure.subplots()
    ax.hist([v for v in values if not math.isnan(v)], bins=bins, color="tab:blue", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title, fontsize=10)
    return _save(figure, path)


def _gradient_section(options: DataReportOptions, rows: Rows, progress: bool) -> dict[str, Any]:
    from .metrics import vendi_score
    from .models import load_model, load_tokenizer

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
    from .metrics import normalized_entropy

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
        from .harness.report import _bar_chart

        clusters = report["gradient"]["clusters"]
        paths.append(
            _bar_chart(
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
    from .harness.report import _fmt, _table

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
        _table(
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
                    f"{_fmt(refs['mean'], 2)} / {_fmt(refs['median'], 1)} / {_fmt(refs['max'], 0)}",
                    "K",
                ],
                ["single-reference rows", _fmt(refs["single_reference_share"]), "ordinary SFT rows"],
                [
                    "target entropy (mean, all / K > 1)",
                    f"{_fmt(ent['mean'])} / {_fmt(ent['multi_reference_mean'])}",
                    "H(w)/ln K: 1 = uniform",
                ],
                [
                    "exact-duplicate rate",
                    f"{_fmt(dup['exact_rate'])} ({dup['exact_rows']} rows)",
                    "rows repeating an earlier prompt + reference set",
                ],
                [
                    f"near-duplicate rate (cos >= {dup['threshold']})",
                    f"{_fmt(dup['near_rate'])} ({dup['near_rows']} rows)",
                    f"TF-IDF char 2-4-gram, {dup['method']}",
                ],
                [
                    f"text Vendi (n = {vendi['n']})",
                    f"{_fmt(vendi['vendi'], 2)} ({_fmt(vendi['vendi_per_row'])} per row)",
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
            f"G-Vendi {_fmt(grad['g_vendi'], 2)} over n = {grad['n']} rows"
            f"{' (seeded subsample)' if grad['subsample'] else ''}: Vendi score of L2-normalised per-example "
            f"loss gradients ({grad['parameters']}, rank {grad['lora_rank']}), Rademacher-projected to "
            f"{grad['dim']} dimensions. k-means with k = {grad['k']}; share × k > 1 is over-represented.",
            "",
            _table(
                ["cluster", "rows", "share", "share × k", "examples"],
                [
                    [
                        str(c["cluster"]),
                        str(c["size"]),
                        _fmt(c["share"]),
                        _fmt(c["over_representation"], 2),
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
            f"Text Vendi of the first {select['vendi_n']}: {_fmt(select['text_vendi'], 2)} "
            f"(a seeded random subset of the same size: {_fmt(select['random_text_vendi'], 2)}).",
        ]
    lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in report["plots"])]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectrum-tune data-report",
        usage=DATA_REPORT_USAGE,
        description="Diversity report of a training set: references per row, target entropy, "
        "(near-)duplicates, text Vendi, and with --model gradient G-Vendi and clusters; "
        "--select N writes a diverse subset.",
    )
    add = parser.add_argument
    add("data", nargs="+", help="data files (.jsonl/.json/.parquet) or a Hub dataset name")
    add("--text-field", "--text_field", dest="text_field", help="plain-text rows: the field holding the text")
    add("--model", help="proxy model for gradient features (a directory, Hub id or spectrum-tune/tiny)")
    add("--select", type=int, help="write DIR/selected.jsonl with this many diverse rows")
    add("--seed", type=int, default=0)
    add(
        "--vendi-sample",
        "--vendi_sample",
        dest="vendi_sample",
        type=int,
        default=1000,
        help="rows in the text-Vendi subsample (default 1000)",
    )
    add(
        "--grad-sample",
        "--grad_sample",
        dest="grad_sample",
        type=int,
        default=512,
        help="rows whose gradients are computed (default 512)",
    )
    add("--grad-dim", "--grad_dim", dest="grad_dim", type=int, default=256, help="projection dimension")
    add("--lora-rank", "--lora_rank", dest="lora_rank", type=int, default=8, help="rank of the gradient LoRA")
    add("--clusters", type=int, default=8, help="k of the gradient k-means (default 8)")
    add("--near-dup-threshold", "--near_dup_threshold", dest="near_dup_threshold", type=float, default=0.9)
    add(
        "--exact-limit",
        "--exact_limit",
        dest="exact_limit",
        type=int,
        default=5000,
        help="up to this many distinct rows compare all pairs; above, MinHash-LSH candidates",
    )
    add("--max-length", "--max_length", dest="max_length", type=int, default=512)
    add("--batch-size", "--batch_size", dest="batch_size", type=int, default=16)
    add("--no-progress", "--no_progress", dest="no_progress", action="store_true")
    add("--out", required=True, type=Path)
    return parser


def cmd_data_report(argv: list[str]) -> int:
    """Entry point of ``spectrum-tune data-report``."""
    args = _parser().parse_args(argv)
    for name in ("select", "vendi_sample", "grad_sample", "grad_dim", "lora_rank", "clusters"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SpectrumError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not 0 < args.near_dup_threshold <= 1:
        raise SpectrumError(f"--near-dup-threshold must be in (0, 1], got {args.near_dup_threshold}")
    options = DataReportOptions(
        data=args.data,
        out=args.out,
        text_field=args.text_field,
        model=args.model,
        select=args.select,
        seed=args.seed,
        vendi_sample=args.vendi_sample,
        grad_sample=args.grad_sample,
        grad_dim=args.grad_dim,
        lora_rank=args.lora_rank,
        clusters=args.clusters,
        near_dup_threshold=args.near_dup_threshold,
        exact_limit=args.exact_limit,
        max_length=args.max_length,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    report = run_data_report(options)
    dup = report["duplicates"]
    line = (
        f"wrote {args.out / 'report.md'}: {report['rows']} rows, exact/near duplicates "
        f"{dup['exact_rate']:.3f}/{dup['near_rate']:.3f}, text Vendi {report['text_vendi']['vendi']:.2f}"
    )
    if "gradient" in report:
        line += f", G-Vendi {report['gradient']['g_vendi']:.2f}"
    print(line + f" ({report['wall_seconds']['total']:.1f} s)")
    return 0
