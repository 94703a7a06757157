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

The functions live in three modules by what they measure (:mod:`.answers`, :mod:`.distributions`,
:mod:`.text`); this package exports them all.
"""

from .answers import (
    DEFAULT_EPS,
    accuracy,
    answer_counts,
    collision,
    coverage,
    distinct_k,
    normalize_answer,
    raw_unique_pct,
    unique_pct,
    valid_mass,
    valid_samples,
    validity,
    yield_count,
)
from .distributions import (
    bootstrap_ci,
    distribution_match,
    empirical_distribution,
    js_divergence,
    kl_divergence,
    normalized_entropy,
    sample_distribution_match,
    score_distribution_match,
    smooth,
    total_variation,
)
from .text import (
    distinct_n,
    embed_texts,
    embedding_diversity,
    intdiv,
    self_bleu,
    tfidf_char_embeddings,
    vendi_score,
)

__all__ = [
    "DEFAULT_EPS",
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
    "intdiv",
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
