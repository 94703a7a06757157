"""Exact and near duplicates: character TF-IDF, MinHash-LSH candidates verified by exact cosine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse

from .rows import NGRAMS, Rows, _chunks, _progress

MINHASH_PERMS = 64
MINHASH_BANDS = 16
MAX_BUCKET = 4096  # LSH buckets larger than this are verified in sorted windows of this size
_PRIME = (1 << 31) - 1  # Mersenne prime of the hash family (a * x + b) mod p; a * x stays below 2^62


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

    Same analyzer and weighting as :func:`spectrum_tune.evaluation.metrics.tfidf_char_embeddings` (whose
    dense matrix does not scale to large data): raw counts times ``ln((1 + n) / (1 + df)) + 1``,
    rows L2-normalised. ``tests/analysis/test_data_report.py`` checks the two agree.
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
        from ..evaluation.metrics.text import char_ngrams  # the harness's analyzer, so both TF-IDFs agree

        return char_ngrams(text, self.ngram_range)

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
