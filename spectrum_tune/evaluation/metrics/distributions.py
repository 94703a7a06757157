"""Distribution metrics: smoothing, KL / JS / TV, score- and sample-mode matches, entropy."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import rel_entr, softmax

from .answers import DEFAULT_EPS, _canonical, answer_counts


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
    ``support``). Intervals are percentile bootstrap intervals over the in-support
    samples (the distribution is conditional on validity), widened where needed so
    that they contain the point estimate. Keys: ``js, kl, reverse_kl, tv``, each also with
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
    # Plug-in divergences are biased upward (resampling only adds noise to the counts), so near a
    # good match the whole bootstrap distribution can lie above the point ("0.413 [0.412, 0.482]"
    # or worse). The reported interval is the percentile interval widened to contain the point.
    low, high = np.minimum(low, point), np.maximum(high, point)
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
