"""Distinct-n: unique n-grams / total n-grams over all texts (Li et al., 2016)."""

import datasets
import evaluate

from spectrum_tune.evaluation.metrics import distinct_n

_DESCRIPTION = """\
Distinct-n pooled over all predictions: unique n-grams divided by total n-grams, with
whitespace tokens and case kept. nan when there is no n-gram.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of str): generated texts.
    ns (int or list of int): n-gram orders (default (1, 2)).
Returns:
    distinct_<n> for each n.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_distinct_n")
    >>> metric.compute(predictions=["the cat sat", "the cat ran"])["distinct_2"]
    0.75
"""

_CITATION = """\
@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={NAACL}, year={2016}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumDistinctN(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(self, predictions, ns=(1, 2), **kwargs):
        orders = [ns] if isinstance(ns, int) else list(ns)
        return {f"distinct_{n}": distinct_n(predictions, n) for n in orders}
