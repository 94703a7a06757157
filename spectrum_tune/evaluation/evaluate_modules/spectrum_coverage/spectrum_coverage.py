"""Valid-set coverage, yield, uniqueness and validity (Spectrum Tuning diverse-valid eval)."""

import datasets
import evaluate

from spectrum_tune.evaluation.metrics import coverage, raw_unique_pct, unique_pct, validity, yield_count

_DESCRIPTION = """\
Set-based spread of sampled answers for a task with an enumerable valid set.
Answers are compared after spectrum_tune.evaluation.metrics.normalize_answer unless normalize=False.
coverage = |unique valid samples| / |valid set|; yield = number of unique valid samples;
unique_pct = unique valid / valid samples (nan when none is valid);
raw_unique_pct = unique samples / all samples; validity = share of valid samples.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of str): sampled answers for one prompt.
    valid_set (list of str): the valid answers (required).
    normalize (bool): normalise before comparing (default True).
Returns:
    coverage, yield, unique_pct, raw_unique_pct, validity.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_coverage")
    >>> metric.compute(predictions=["a", "b", "a"], valid_set=["a", "b", "c", "d"])["coverage"]
    0.5
"""

_CITATION = """\
@misc{sorensen2025spectrumtuning,
  title={Spectrum Tuning: Post-Training for Distributional Coverage and In-Context Steerability},
  author={Taylor Sorensen and others}, year={2025}, eprint={2510.06084}, archivePrefix={arXiv}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumCoverage(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(self, predictions, valid_set=None, normalize=True, **kwargs):
        if valid_set is None:
            raise ValueError("spectrum_coverage needs valid_set=[...]")
        return {
            "coverage": coverage(predictions, valid_set, normalize=normalize),
            "yield": yield_count(predictions, valid_set, normalize=normalize),
            "unique_pct": unique_pct(predictions, valid_set, normalize=normalize),
            "raw_unique_pct": raw_unique_pct(predictions, normalize=normalize),
            "validity": validity(predictions, valid_set, normalize=normalize),
        }
