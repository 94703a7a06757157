"""Accuracy and output-spread metrics for the spectrum-tune eval harness.

Pure numpy/scipy (plus sacrebleu for self-BLEU); no model code. Definitions follow
Spectrum Tuning (Sorensen et al., 2025, arXiv 2510.06084) and NoveltyBench so numbers
are comparable with published work.

Conventions
-----------
* Answer matching: every function that compares answers canonicalises them itself with
  :func:`normalize_answer` (``normalize=True``, the default). The normalisation is
  idempotent, so already-normalised strings are fine. ``normalize=False`` compares the
  samples as given (any hashable). Non-string samples are passed through ``str`` first
  when normalising.
* Validity: sample-based spread metrics take either ``valid_set`` (a collection of valid
  answers, normalised the same way) or ``is_valid`` (a predicate called on each raw
  sample, or a boolean array aligned with the samples). With neither, every sample is
  valid.
* Empty inputs: a share over zero items (no samples, no valid samples, no pairs) is
  ``nan``; malformed inputs (empty valid set or support, negative or all-zero
  probabilities, mismatched shapes) raise ``ValueError``.
* Logarithms are natural, so JS divergence lies in [0, ln 2].
* Self-BLEU is on sacrebleu's 0-100 scale.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike
from scipy.special import logsumexp, rel_entr, softmax

__all__ = [
    "accuracy",
    "answer_counts",
    "bootstrap_ci",
    "collision",
    "coverage",
    "distinct_k",
    "distinct_n",
    "distribution_match",
    "embed_texts",
    "embedding_diversity",
    "empirical_distribution",
    "js_divergence",
    "kl_divergence",
    "normalize_answer",
    "normalized_entropy",
    "raw_unique_pct",
    "sample_distribution_match",
    "score_distribution_match",
    "self_bleu",
    "smooth",
    "tfidf_char_embeddings",
    "total_variation",
    "unique_pct",
    "valid_mass",
    "valid_samples",
    "validity",
    "vendi_score",
    "yield_count",
]

DEFAULT_EPS = 1e-6

_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"
_SENTENCE_PUNCT = ".!?"


# --------------------------------------------------------------------------------------
# Answer normalisation and counting
# --------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """Canonical form used to match a generated answer against answers or a valid set.

    Steps, in order:

    1. strip surrounding whitespace;
    2. keep only the first line (cut at the first line break);
    3. repeatedly strip trailing sentence punctuation (``. ! ?``), surrounding quotes
       (straight, curly, backtick, guillemets) and whitespace until nothing changes, so
       ``'"Paris."'`` and ``'Paris".'`` both become ``Paris``;
    4. collapse runs of inner whitespace to one space;
    5. casefold (``"Straße"`` -> ``"strasse"``).

    The function is idempotent. Quotes are stripped at both ends, so a trailing
    apostrophe (``dogs'``) is lost too.
    """
    text = text.strip()
    lines = text.splitlines()
    text = lines[0] if lines else ""
    previous = None
    while text != previous:
        previous = text
        text = text.strip().rstrip(_SENTENCE_PUNCT).strip(_QUOTES)
    return " ".join(text.split()).casefold()


def _canonical(samples: Iterable[Any], normalize: bool) -> list[Hashable]:
    if normalize:
        return [normalize_answer(str(s)) for s in samples]
    return list(samples)


def answer_counts(samples: Iterable[Any], *, normalize: bool = True) -> Counter:
    """Count samples by canonical form (see module conventions)."""
    return Counter(_canonical(samples, normalize))


def _validity_mask(
    samples: Sequence[Any],
    valid_set: Collection[Any] | None,
    is_valid: Callable[[Any], bool] | ArrayLike | None,
    normalize: bool,
) -> np.ndarray:
    if valid_set is not None and is_valid is not None:
        raise ValueError("give either valid_set or is_valid, not both")
    if valid_set is not None:
        allowed = set(_canonical(valid_set, normalize))
        return np.array([s in allowed for s in _canonical(samples, normalize)], dtype=bool)
    if is_valid is None:
        return np.ones(len(samples), dtype=bool)
    if callable(is_valid):
        return np.array([bool(is_valid(s)) for s in samples], dtype=bool)
    mask = np.asarray(is_valid, dtype=bool)
    if mask.shape != (len(samples),):
        raise ValueError(f"is_valid has shape {mask.shape}, expected ({len(samples)},)")
    return mask


def valid_samples(
    samples: Sequence[Any],
    valid_set: Collection[Any] | None = None,
    *,
    is_valid: Callable[[Any], bool] | ArrayLike | None = None,
    normalize: bool = True,
) -> list[Hashable]:
    """Canonical forms of the valid samples, in sample order."""
    mask = _validity_mask(samples, valid_set, is_valid, normalize)
    canon = _canonical(samples, normalize)
    return [c for c, ok in zip(canon, mask, strict=True) if ok]


def _share(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else math.nan


# --------------------------------------------------------------------------------------
# Accuracy, validity and set-based spread
# --------------------------------------------------------------------------------------


def validity(
    samples: Sequence[Any],
    valid_set: Collection[Any] | None = None,
    *,
    is_valid: Callable[[Any], bool] | ArrayLike | None = None,
    normalize: bool = True,
) -> float:
    """Share of valid samples.

    With neither ``valid_set`` nor ``is_valid``, ``samples`` is itself the boolean
    validity array. ``nan`` for no samples.
    """
    if valid_set is None and is_valid is None:
        mask = np.asarray(samples, dtype=bool).reshape(-1)
    else:
        mask = _validity_mask(samples, valid_set, is_valid, normalize)
    return _share(mask.sum(), mask.size)


def accuracy(samples: Sequence[Any], answer: Any, *, normalize: bool = True) -> float:
    """Share of samples equal to the single correct ``answer`` (exact match).

    ``nan`` for no samples.
    """
    (target,) = _canonical([answer], normalize)
    canon = _canonical(samples, normalize)
    return _share(sum(c == target for c in canon), len(canon))


def valid_mass(logprobs: ArrayLike, valid: ArrayLike | None = None) -> float:
    """Probability mass on valid outputs: ``sum_k exp(s_k)`` over valid ``k``.

    ``logprobs`` are (natural-log) sequence log-probabilities; ``valid`` is an optional
    boolean mask (default: all given outputs are valid). Computed as
    ``exp(logsumexp(s))`` so tiny log-probs do not underflow term by term.
    Returns 0.0 when there is no valid output.
    """
    s = np.asarray(logprobs, dtype=float).reshape(-1)
    if valid is not None:
        mask = np.asarray(valid, dtype=bool).reshape(-1)
        if mask.shape != s.shape:
            raise ValueError(f"valid has shape {mask.shape}, expected {s.shape}")
        s = s[mask]
    if s.size == 0:
        return 0.0
    return float(np.exp(logsumexp(s)))


def coverage(
    samples: Sequence[Any], valid_set: Collection[Any], *, normalize: bool = True
) -> float:
    """``|unique valid samples| / |valid set|`` (published ``coverage_pct``).

    The valid set is deduplicated after normalisation. Raises ``ValueError`` for an
    empty valid set.
    """
    n_valid_answers = len(set(_canonical(valid_set, normalize)))
    if n_valid_answers == 0:
        raise ValueError("coverage needs a non-empty valid_set")
    return yield_count(samples, valid_set, normalize=normalize) / n_valid_answers


def yield_count(
    samples: Sequence[Any],
    valid_set: Collection[Any] | None = None,
    *,
    is_valid: Callable[[Any], bool] | ArrayLike | None = None,
    normalize: bool = True,
) -> int:
    """Number of unique valid samples (published ``unique_valid_count``)."""
    return len(set(valid_samples(samples, valid_set, is_valid=is_valid, normalize=normalize)))


def unique_pct(
    samples: Sequence[Any],
    valid_set: Collection[Any] | None = None,
    *,
    is_valid: Callable[[Any], bool] | ArrayLike | None = None,
    normalize: bool = True,
) -> float:
    """Unique valid samples / valid samples (published ``unique_gens_pct``).

    ``nan`` when there is no valid sample (the published code reports 0.0 there).
    """
    valid = valid_samples(samples, valid_set, is_valid=is_valid, normalize=normalize)
    return _share(len(set(valid)), len(valid))


def raw_unique_pct(samples: Sequence[Any], *, normalize: bool = True) -> float:
    """Unique samples / all samples, validity ignored. ``nan`` for no samples."""
    return _share(len(answer_counts(samples, normalize=normalize)), len(samples))


def collision(
    samples: Sequence[Any],
    valid_set: Collection[Any] | None = None,
    *,
    is_valid: Callable[[Any], bool] | ArrayLike | None = None,
    normalize: bool = True,
) -> tuple[float, float]:
    """Share of unordered pairs of valid samples that are identical, with its SE.

    Published ``pairwise_collision`` and ``pairwise_collision_sem``:
    ``p = sum_c C(c, 2) / C(n, 2)`` over the counts ``c`` of each distinct valid answer,
    ``se = sqrt(p (1 - p) / C(n, 2))``. Returns ``(nan, nan)`` with fewer than two valid
    samples (the published code reports 0.0 there).
    """
    valid = valid_samples(samples, valid_set, is_valid=is_valid, normalize=normalize)
    n = len(valid)
    pairs = n * (n - 1) // 2
    if pairs == 0:
        return math.nan, math.nan
    same = sum(c * (c - 1) // 2 for c in Counter(valid).values())
    p = same / pairs
    return p, math.sqrt(p * (1.0 - p) / pairs)


def distinct_k(
    texts: Sequence[Any],
    k: int | None = None,
    equivalent: Callable[[Any, Any], bool] | None = None,
    *,
    normalize: bool = True,
) -> int:
    """NoveltyBench ``distinct``: number of equivalence classes among the first ``k``.

    Default equivalence is equality after :func:`normalize_answer` (or raw equality with
    ``normalize=False``). A custom ``equivalent(representative, text)`` is applied to the
    raw texts with NoveltyBench's greedy partition: each text joins the first class
    (in creation order) whose first member it is equivalent to, else starts a new class.
    ``k=None`` uses all texts; fewer than ``k`` texts uses all of them.
    """
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    head = list(texts if k is None else texts[:k])
    if equivalent is None:
        return len(answer_counts(head, normalize=normalize))
    representatives: list[Any] = []
    for text in head:
        if not any(equivalent(rep, text) for rep in representatives):
            representatives.append(text)
    return len(representatives)


# --------------------------------------------------------------------------------------
# Distribution match
# --------------------------------------------------------------------------------------


def _as_distribution(p: ArrayLike, name: str = "p") -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name} has zero total mass")
    return arr / total


def _pair(p: ArrayLike, q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p_arr, q_arr = _as_distribution(p, "p"), _as_distribution(q, "q")
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"p and q differ in shape: {p_arr.shape} vs {q_arr.shape}")
    return p_arr, q_arr


def smooth(p: ArrayLike, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Normalise ``p``, add ``eps`` to every entry, renormalise.

    Normalising first makes ``eps`` a probability, independent of the input's scale.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    smoothed = _as_distribution(p) + eps
    return smoothed / smoothed.sum()


def kl_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """``KL(p || q)`` in nats; ``inf`` where ``q`` is 0 and ``p`` is not. Inputs normalised."""
    p_arr, q_arr = _pair(p, q)
    return float(np.sum(rel_entr(p_arr, q_arr)))


def js_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon divergence in nats: 0 for equal, ln 2 for disjoint supports.

    Not the JS *distance* (its square root) that ``scipy.spatial.distance`` returns.
    """
    p_arr, q_arr = _pair(p, q)
    m = 0.5 * (p_arr + q_arr)
    value = 0.5 * np.sum(rel_entr(p_arr, m)) + 0.5 * np.sum(rel_entr(q_arr, m))
    return max(float(value), 0.0)  # rounding can leave -1e-17 for equal inputs


def total_variation(p: ArrayLike, q: ArrayLike) -> float:
    """``0.5 * sum |p - q|`` on the normalised inputs."""
    p_arr, q_arr = _pair(p, q)
    return float(0.5 * np.abs(p_arr - q_arr).sum())


def distribution_match(
    model_probs: ArrayLike, target_probs: ArrayLike, eps: float = DEFAULT_EPS
) -> dict[str, float]:
    """JS, KL, reverse KL and TV between a model distribution and a target.

    Both sides are smoothed with :func:`smooth` (``eps`` per entry, renormalised) before
    every divergence, exactly as in the Spectrum Tuning evaluation, so both KLs stay
    finite; ``eps=0`` disables smoothing. Directions follow that code:
    ``kl = KL(target || model)`` (mass-covering, penalises missed target mass) and
    ``reverse_kl = KL(model || target)``.
    """
    model, target = _pair(model_probs, target_probs)
    model, target = smooth(model, eps), smooth(target, eps)
    return {
        "js": js_divergence(model, target),
        "kl": kl_divergence(target, model),
        "reverse_kl": kl_divergence(model, target),
        "tv": total_variation(model, target),
    }


def score_distribution_match(
    valid_logprobs: ArrayLike, target_probs: ArrayLike, eps: float = DEFAULT_EPS
) -> dict[str, float]:
    """Score mode: :func:`distribution_match` of ``softmax(valid_logprobs)`` vs target.

    ``valid_logprobs`` are sequence log-probs of each valid-set element, aligned with
    ``target_probs``; the softmax renormalises the model onto the valid set.
    """
    s = np.asarray(valid_logprobs, dtype=float).reshape(-1)
    if s.size == 0:
        raise ValueError("valid_logprobs is empty")
    return distribution_match(softmax(s), target_probs, eps)


def empirical_distribution(
    samples: Sequence[Any], support: Sequence[Any], *, normalize: bool = True
) -> np.ndarray:
    """Counts of ``samples`` over ``support`` (float array in support order).

    Samples outside the support (invalid ones) are not counted, so the result is the
    unnormalised valid-sample distribution. Duplicate support entries raise.
    """
    index = _support_index(support, normalize)
    counts = np.zeros(len(index), dtype=float)
    for s in _canonical(samples, normalize):
        if s in index:
            counts[index[s]] += 1
    return counts


def _support_index(support: Sequence[Any], normalize: bool) -> dict[Hashable, int]:
    canon = _canonical(support, normalize)
    if not canon:
        raise ValueError("support is empty")
    index = {s: i for i, s in enumerate(canon)}
    if len(index) != len(canon):
        raise ValueError("support has duplicate entries (after normalisation)")
    return index


def bootstrap_ci(
    stat_fn: Callable[[Any], float | np.ndarray],
    samples: Sequence[Any] | np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Percentile bootstrap interval ``(low, high)`` at level ``1 - alpha``.

    Resamples ``samples`` with replacement ``n_boot`` times (numpy ``default_rng(seed)``,
    so results are deterministic) and takes the ``alpha/2`` and ``1 - alpha/2``
    quantiles of ``stat_fn(resample)``, ignoring ``nan`` statistics. ``stat_fn`` may
    return a 1-D array, in which case ``low`` and ``high`` are arrays. Arrays are
    resampled along axis 0, other sequences as lists. ``(nan, nan)`` for no samples.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = len(samples)
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        if isinstance(samples, np.ndarray):
            resample: Any = samples[idx]
        else:
            resample = [samples[i] for i in idx]
        stats.append(np.asarray(stat_fn(resample), dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices give nan
        low, high = np.nanquantile(np.stack(stats), [alpha / 2, 1 - alpha / 2], axis=0)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def sample_distribution_match(
    samples: Sequence[Any],
    support: Sequence[Any],
    target: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    eps: float = DEFAULT_EPS,
    normalize: bool = True,
) -> dict[str, float]:
    """Sample mode: divergences of the empirical valid-sample distribution vs ``target``.

    Point values are :func:`distribution_match` of :func:`empirical_distribution`
    (same ``eps`` smoothing on both sides) against ``target`` (aligned with
    ``support``). Intervals resample the in-support samples (the distribution is
    conditional on validity). Keys: ``js, kl, reverse_kl, tv``, each also with
    ``_ci_low`` / ``_ci_high``, plus ``n_in_support``. All ``nan`` when no sample falls
    in the support.
    """
    target_arr = _as_distribution(target, "target")
    index = _support_index(support, normalize)
    if len(index) != target_arr.size:
        raise ValueError(f"support has {len(index)} entries but target has {target_arr.size}")
    hits = np.array([index[s] for s in _canonical(samples, normalize) if s in index], dtype=int)
    names = ("js", "kl", "reverse_kl", "tv")

    def stats(idx: np.ndarray) -> np.ndarray:
        counts = np.bincount(idx, minlength=target_arr.size)
        match = distribution_match(counts, target_arr, eps)
        return np.array([match[k] for k in names])

    result: dict[str, float] = {"n_in_support": float(hits.size)}
    if hits.size == 0:
        for name in names:
            result[name] = result[f"{name}_ci_low"] = result[f"{name}_ci_high"] = math.nan
        return result
    point = stats(hits)
    low, high = bootstrap_ci(stats, hits, n_boot=n_boot, alpha=alpha, seed=seed)
    for i, name in enumerate(names):
        result[name] = float(point[i])
        result[f"{name}_ci_low"] = float(low[i])
        result[f"{name}_ci_high"] = float(high[i])
    return result


def normalized_entropy(
    samples: Sequence[Any] | None = None,
    *,
    counts: ArrayLike | None = None,
    support_size: int | None = None,
    normalize: bool = True,
) -> float:
    """Shannon entropy of the empirical distribution divided by ``ln K``.

    Give either ``samples`` (counted after normalisation) or ``counts``. ``K`` is
    ``support_size`` when given; otherwise the number of distinct samples, or
    ``len(counts)`` (zero entries included, e.g. counts over a support). Returns 0.0
    when ``K == 1`` and ``nan`` when there is nothing to count.
    """
    if (samples is None) == (counts is None):
        raise ValueError("give exactly one of samples or counts")
    if counts is None:
        c = np.array(list(answer_counts(samples, normalize=normalize).values()), dtype=float)
        n_categories = c.size
    else:
        c = np.asarray(counts, dtype=float).reshape(-1)
        if np.any(c < 0):
            raise ValueError("counts must be non-negative")
        n_categories = c.size
    if support_size is not None:
        if support_size < np.count_nonzero(c):
            raise ValueError(f"support_size {support_size} < number of observed categories")
        n_categories = support_size
    if c.sum() <= 0:
        return math.nan
    if n_categories <= 1:
        return 0.0
    p = c / c.sum()
    entropy = -float(np.sum(p[p > 0] * np.log(p[p > 0])))
    return entropy / math.log(n_categories)


# --------------------------------------------------------------------------------------
# Lexical diversity
# --------------------------------------------------------------------------------------


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


def _char_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
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
        for gram, count in Counter(_char_ngrams(text, ngram_range)).items():
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


def embedding_diversity(embeddings: ArrayLike) -> float:
    """Mean pairwise cosine distance ``1 - cos`` over unordered pairs. ``nan`` below 2 items."""
    k = _cosine_similarity(embeddings)
    n = k.shape[0]
    if n < 2:
        return math.nan
    upper = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - k[upper]))
