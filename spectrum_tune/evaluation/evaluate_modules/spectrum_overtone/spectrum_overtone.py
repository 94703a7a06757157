"""Overtone pluralism: the share of listed viewpoints each response presents, and across responses."""

import datasets
import evaluate

from spectrum_tune.evaluation.overtone import load_overtone_judge, overtone_metrics, parse_viewpoints

_DESCRIPTION = """\
Overtone coverage of the responses to one prompt against its listed viewpoints.
overtone_coverage = mean over responses of the share of viewpoints the response presents;
overtone_union = share of viewpoints presented by at least one response;
overtone_complete = share of responses presenting every viewpoint.
A viewpoint is a string or {"text", "keywords", "label"}; the default judge ("keywords") marks a
viewpoint presented when one of its keywords occurs (whole words, case-insensitive); judge=PATH_OR_HUB_ID
uses an NLI cross-encoder (entailment of the viewpoint text by the response or one of its sentences).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of str): responses to one prompt.
    viewpoints (list of str or dict): the prompt's viewpoints (at least two; required).
    judge (str): "keywords" (default) or an NLI model path / Hub id (e.g. cross-encoder/nli-deberta-v3-base).
    threshold (float): entailment probability at which an NLI judge counts a viewpoint (default 0.5).
Returns:
    overtone_coverage, overtone_union, overtone_complete.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_overtone")
    >>> viewpoints = [{"text": "Dogs are loyal.", "keywords": ["loyal"]},
    ...               {"text": "Cats are independent.", "keywords": ["independent"]}]
    >>> metric.compute(predictions=["A loyal dog.", "Loyal dogs, independent cats."],
    ...                viewpoints=viewpoints)["overtone_coverage"]
    0.75
"""

_CITATION = """\
@misc{sorensen2024roadmap,
  title={A Roadmap to Pluralistic Alignment}, author={Taylor Sorensen and others},
  year={2024}, eprint={2402.05070}, archivePrefix={arXiv}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumOvertone(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(self, predictions, viewpoints=None, judge="keywords", threshold=0.5, **kwargs):
        if viewpoints is None:
            raise ValueError("spectrum_overtone needs viewpoints=[...]")
        parsed = parse_viewpoints(list(viewpoints), "viewpoints")
        return overtone_metrics(list(predictions), parsed, load_overtone_judge(judge, threshold))
