"""Exact and near duplicates: character TF-IDF (scikit-learn), MinHash-LSH candidates (datasketch)
verified by exact cosine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse

from ..evaluation.metrics.text import char_tfidf, with_empty_term
from .rows import NGRAMS, Rows, _chunks, _progress

MINHASH_PERMS = 64
MINHASH_BANDS = 16
MAX_BUCKET = 4096  # at most this many earlier LSH candidates of a row are verified


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
    """Sparse TF-IDF over character n-grams with idf from the whole dataset.

    scikit-learn's vectoriser (:func:`spectrum_tune.evaluation.metrics.text.char_tfidf`, the one the
    harness's :func:`~spectrum_tune.evaluation.metrics.tfidf_char_embeddings` uses, pseudo-term for
    texts without n-grams included) kept sparse, as a dense matrix does not scale to large data.
    """

    def __init__(self, texts: Sequence[str], ngram_range: tuple[int, int] = NGRAMS, progress: bool = False):
        self.ngram_range = ngram_range
        self.vectorizer = char_tfidf(ngram_range)
        try:
            self.vectorizer.fit(list(texts))
        except ValueError:  # no n-gram anywhere: every text is the pseudo-term alone
            self.vectorizer = None

    def grams(self, text: str) -> set[str]:
        """The text's distinct n-grams (what MinHash hashes), by the vectoriser's analyzer."""
        analyzer = char_tfidf(self.ngram_range).build_analyzer()
        return set(analyzer(text))

    def transform(self, texts: Sequence[str], dtype: Any = np.float64) -> scipy.sparse.csr_matrix:
        """L2-normalised TF-IDF rows (CSR, ``len(texts) x (vocab + 1)``), chunk by chunk."""
        blocks = []
        for part in _chunks(len(texts)):
            chunk = list(texts[part])
            matrix = (
                self.vectorizer.transform(chunk)
                if self.vectorizer is not None
                else scipy.sparse.csr_matrix((len(chunk), 0))
            )
            blocks.append(with_empty_term(matrix).astype(dtype))
        if len(blocks) == 1:
            return blocks[0]
        return scipy.sparse.vstack(blocks, format="csr") if blocks else scipy.sparse.csr_matrix((0, 0))


def minhash_lsh(
    tfidf: CharTfidf, texts: Sequence[str], perms: int = MINHASH_PERMS, seed: int = 0, progress: bool = False
) -> tuple[Any, list[Any]]:
    """datasketch's MinHash of each text's n-gram set (seeded) in a MinHash-LSH index of
    ``MINHASH_BANDS`` bands: ``(index, minhashes)``; keys are row numbers."""
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(num_perm=perms, params=(MINHASH_BANDS, perms // MINHASH_BANDS))
    hashes = []
    for part in _progress(list(_chunks(len(texts))), progress, desc="minhash", unit="chunk"):
        # a text without n-grams hashes one shared token, so such texts stay candidates of each other
        sets = [[g.encode() for g in tfidf.grams(text)] or [b"\x00"] for text in texts[part]]
        hashes += MinHash.bulk(sets, num_perm=perms, seed=seed)
    for row, minhash in enumerate(hashes):
        index.insert(row, minhash, check_duplication=False)
    return index, hashes


def _lsh_groups(index: Any, hashes: list[Any]) -> Iterator[np.ndarray]:
    """Per row, the row and its earlier LSH candidates (a shared band), sorted; at most ``MAX_BUCKET``
    of the latest candidates, so templated data (one huge bucket) bounds the cost at some recall."""
    for row, minhash in enumerate(hashes):
        earlier = sorted(key for key in index.query(minhash) if key < row)[-MAX_BUCKET:]
        if earlier:
            yield np.array([*earlier, row], dtype=np.int64)


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
    local: list[tuple[int, int, float]] = []
    matrix = tfidf.transform(unique_texts)
    if len(distinct) <= exact_limit:
        method = "all-pairs"
        _mark_later_neighbours(matrix, np.arange(len(distinct)), threshold, found, local)
    else:
        method = "minhash-lsh"
        index, hashes = minhash_lsh(tfidf, unique_texts, seed=seed, progress=progress)
        for members in _progress(_lsh_groups(index, hashes), progress, desc="verify", unit="row"):
            row, earlier = members[-1], members[:-1]
            sims = (matrix[earlier] @ matrix[row].T).toarray().ravel()
            hits = np.flatnonzero(sims >= threshold - 1e-9)
            if hits.size:
                found[row] = True
                if len(local) < 20:
                    local.append((int(earlier[hits[0]]), int(row), float(sims[hits[0]])))
    near[distinct[found]] = True
    pairs += [(int(distinct[i]), int(distinct[j]), c) for i, j, c in local[: 20 - len(pairs)]]
    return {"mask": near, "method": method, "pairs": pairs}
