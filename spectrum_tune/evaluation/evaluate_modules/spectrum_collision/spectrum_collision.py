"""Pairwise collision rate of valid samples (Spectrum Tuning ``pairwise_collision``)."""

import datasets
import evaluate

from spectrum_tune.evaluation.metrics import collision

_DESCRIPTION = """\
Share of unordered pairs of valid samples that are identical after normalisation, with its
standard error sqrt(p(1-p)/pairs). Computed from answer counts. nan with fewer than two
valid samples.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of str): sampled answers for one prompt.
    valid_set (list of str, optional): valid answers; default treats every sample as valid.
    normalize (bool): normalise before comparing (default True).
Returns:
    collision, collision_se.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_collision")
    >>> round(metric.compute(predictions=["a", "a", "b"])["collision"], 4)
    0.3333
"""

_CITATION = """\
@misc{sorensen2025spectrumtuning,
  title={Spectrum Tuning: Post-Training for Distributional Coverage and In-Context Steerability},
  author={Taylor Sorensen and others}, year={2025}, eprint={2510.06084}, archivePrefix={arXiv}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumCollision(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(self, predictions, valid_set=None, normalize=True, **kwargs):
        p, se = collision(predictions, valid_set, normalize=normalize)
        return {"collision": p, "collision_se": se}
