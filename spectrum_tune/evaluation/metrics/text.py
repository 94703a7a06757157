"""Spread of free text: distinct-n, self-BLEU, TF-IDF embeddings, Vendi score."""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence

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

_MULTI_WHITESPACE = re.compile(r"\s\s+")
# Texts with no character n-gram share this pseudo-term, so they stay comparable:
# identical to each other, orthogonal to everything else.
_EMPTY_TERM = "\x00"


def char_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    # Same analyzer as sklearn's TfidfVectorizer(analyzer="char"): lowercase, squeeze
    # whitespace runs, no padding.
    text = _MULTI_WHITESPACE.sub(" ", text.lower())
    lo, hi = ngram_range
    grams = [text[i : i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1)]
    return grams or [_EMPTY_TERM]


def tfidf_char_embeddings(
    texts: Sequence[str], ngram_range: tuple[int, int] = (2, 4)
) -> np.ndarray:
    """L2-normalised TF-IDF vectors over character n-grams, shape ``(len(texts), vocab)``.

    Matches ``sklearn.feature_extraction.text.TfidfVectorizer(analyzer="char",
    ngram_range=ngram_range)`` (raw counts, smooth idf ``ln((1+n)/(1+df)) + 1``, l2
    rows), except that a text without any n-gram gets one shared pseudo-term instead
    of a zero row. ``ngram_range`` is inclusive. Empty ``texts`` gives a ``(0, 0)`` array.
    """
    lo, hi = ngram_range
    if not 1 <= lo <= hi:
        raise ValueError(f"invalid ngram_range {ngram_range}")
    if len(texts) == 0:
        return np.zeros((0, 0))
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for row, text in enumerate(texts):
        for gram, count in Counter(char_ngrams(text, ngram_range)).items():
            rows.append(row)
            cols.append(vocab.setdefault(gram, len(vocab)))
            vals.append(count)
    tf = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(vocab)), dtype=float)
    df = np.bincount(cols, minlength=len(vocab))
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    x = tf.multiply(idf[None, :]).toarray()
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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


def vendi_score(
    embeddings: ArrayLike | None = None, *, similarity: ArrayLike | None = None
) -> float:
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
