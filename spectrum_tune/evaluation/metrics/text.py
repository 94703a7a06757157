"""Spread of free text: distinct-n, self-BLEU, TF-IDF embeddings, Vendi score."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike

from .answers import _share


def distinct_n(texts: Sequence[str], n: int = 1) -> float:
    """Unique n-grams / total n-grams, pooled over all texts (whitespace tokens, case kept).

    ``nan`` when the texts contain no n-gram.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ngrams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = text.split()
        ngrams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return _share(len(set(ngrams)), len(ngrams))


def self_bleu(texts: Sequence[str], *, tokenize: str = "13a", lowercase: bool = False) -> float:
    """Mean sentence BLEU of each text against all the others as references (0-100).

    Uses sacrebleu's sentence-level settings: ``exp`` smoothing and
    ``effective_order=True`` (texts shorter than 4 tokens are scored on the n-gram
    orders they have, instead of getting 0). A text sharing no unigram with any other
    scores exactly 0. ``nan`` for fewer than two texts.
    """
    from sacrebleu.metrics import BLEU

    if len(texts) < 2:
        return math.nan
    bleu = BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=True)
    scores = [
        bleu.sentence_score(text, [t for j, t in enumerate(texts) if j != i]).score
        for i, text in enumerate(texts)
    ]
    return float(np.mean(scores))


# --------------------------------------------------------------------------------------
# Embedding diversity
# --------------------------------------------------------------------------------------


def char_tfidf(ngram_range: tuple[int, int] = (2, 4), dtype: Any = np.float64) -> Any:
    """scikit-learn's ``TfidfVectorizer(analyzer="char")``: lowercase, whitespace runs squeezed, no
    padding; raw counts times the smooth idf ``ln((1+n)/(1+df)) + 1``, rows L2-normalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=ngram_range, dtype=dtype)


def with_empty_term(matrix: scipy.sparse.spmatrix, always: bool = True) -> scipy.sparse.csr_matrix:
    """``matrix`` with one more column, the pseudo-term of rows that have no n-gram (``always``
    False: only when some row has none).

    scikit-learn leaves such a text (shorter than the smallest n) a zero row, and cosine is undefined
    on it; with the pseudo-term those texts ("", "7", "a") are identical to each other and orthogonal
    to everything else, as the hand-written vectoriser this replaced made them. The term is the row's
    only entry, so its idf does not matter after normalisation, and other rows are unchanged.
    """
    matrix = scipy.sparse.csr_matrix(matrix)
    empty = (np.diff(matrix.indptr) == 0).astype(matrix.dtype)
    if not always and not empty.any():
        return matrix
    return scipy.sparse.hstack([matrix, scipy.sparse.csr_matrix(empty[:, None])], format="csr")


def tfidf_char_embeddings(texts: Sequence[str], ngram_range: tuple[int, int] = (2, 4)) -> np.ndarray:
    """L2-normalised TF-IDF vectors over character n-grams, shape ``(len(texts), vocab)`` (one more
    column when a text has no n-gram).

    :func:`char_tfidf` (scikit-learn's vectoriser) fitted on ``texts``, plus :func:`with_empty_term`
    for texts without any n-gram. ``ngram_range`` is inclusive. Empty ``texts`` gives a ``(0, 0)``
    array. (Until scikit-learn replaced it, a hand-written vectoriser computed the same numbers;
    ``tests/evaluation/test_metrics.py`` pins them.)
    """
    lo, hi = ngram_range
    if not 1 <= lo <= hi:
        raise ValueError(f"invalid ngram_range {ngram_range}")
    if len(texts) == 0:
        return np.zeros((0, 0))
    vectorizer = char_tfidf(ngram_range)
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # no text has an n-gram: scikit-learn refuses an empty vocabulary
        matrix = scipy.sparse.csr_matrix((len(texts), 0))
    return with_empty_term(matrix, always=False).toarray()


def embed_texts(
    texts: Sequence[str],
    *,
    model_path: str | None = None,
    ngram_range: tuple[int, int] = (2, 4),
) -> np.ndarray:
    """Embed texts with a local sentence-transformers model, else TF-IDF (the default).

    The sentence-transformers path is used only when ``model_path`` is given and the
    package is importable; otherwise this warns and falls back to
    :func:`tfidf_char_embeddings`, so scores from the two paths must not be mixed.
    """
    if model_path is not None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            warnings.warn(
                "sentence_transformers is not installed; using TF-IDF embeddings instead",
                stacklevel=2,
            )
        else:
            model = SentenceTransformer(model_path, local_files_only=True)
            return np.asarray(model.encode(list(texts), normalize_embeddings=True), dtype=float)
    return tfidf_char_embeddings(texts, ngram_range)


def _cosine_similarity(embeddings: ArrayLike) -> np.ndarray:
    x = np.asarray(embeddings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("cosine similarity is undefined for zero embedding vectors")
    x = x / norms
    return x @ x.T


def vendi_score(embeddings: ArrayLike | None = None, *, similarity: ArrayLike | None = None) -> float:
    """Vendi score ``exp(H(eig(K / n)))`` (Friedman & Dieng, 2023).

    ``K`` is the cosine similarity of the rows of ``embeddings``, or the given
    ``similarity`` matrix (symmetrised; it should have a unit diagonal). Tiny negative
    eigenvalues from rounding are clipped to 0. n identical items give 1, n orthogonal
    items give n. ``nan`` for no items.
    """
    if (embeddings is None) == (similarity is None):
        raise ValueError("give exactly one of embeddings or similarity")
    if similarity is None:
        k = _cosine_similarity(embeddings)
    else:
        k = np.asarray(similarity, dtype=float)
        if k.ndim != 2 or k.shape[0] != k.shape[1]:
            raise ValueError(f"similarity must be square, got shape {k.shape}")
        k = 0.5 * (k + k.T)
    n = k.shape[0]
    if n == 0:
        return math.nan
    eig = np.clip(np.linalg.eigvalsh(k / n), 0.0, None)
    eig = eig[eig > 0]
    return float(np.exp(-np.sum(eig * np.log(eig))))


def intdiv(embeddings: ArrayLike) -> float:
    """Vendi-Score's ``intdiv_K``: ``1 - mean(K)`` over all ``n^2`` entries of the cosine matrix.

    The diagonal (each item with itself, 1) is included, so ``n`` identical items give 0 and
    ``intdiv = embedding_diversity * (n - 1) / n``. ``nan`` for no items.
    """
    k = _cosine_similarity(embeddings)
    return float(1.0 - k.mean()) if k.size else math.nan


def embedding_diversity(embeddings: ArrayLike) -> float:
    """Mean pairwise cosine distance ``1 - cos`` over the ``n (n - 1) / 2`` distinct pairs.

    The diagonal is left out, so this is Vendi's :func:`intdiv` times ``n / (n - 1)``.
    ``nan`` below 2 items.
    """
    k = _cosine_similarity(embeddings)
    n = k.shape[0]
    if n < 2:
        return math.nan
    upper = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - k[upper]))
