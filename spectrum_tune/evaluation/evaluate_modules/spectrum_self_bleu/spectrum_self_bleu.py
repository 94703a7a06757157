"""Self-BLEU: mean sentence BLEU of each text against all others (Zhu et al., 2018)."""

import datasets
import evaluate

from spectrum_tune.evaluation.metrics import self_bleu

_DESCRIPTION = """\
Self-BLEU on sacrebleu's 0-100 scale (higher = less diverse): mean over texts of sentence
BLEU (exp smoothing, effective order, 13a tokenizer) with all other texts as references.
nan for fewer than two texts.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of str): generated texts.
    tokenize (str): sacrebleu tokenizer (default "13a").
    lowercase (bool): lowercase before scoring (default False).
Returns:
    self_bleu.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_self_bleu")
    >>> metric.compute(predictions=["the cat sat", "the cat sat"])["self_bleu"]
    100.0
"""

_CITATION = """\
@inproceedings{zhu2018texygen,
  title={Texygen: A Benchmarking Platform for Text Generation Models},
  author={Zhu, Yaoming and Lu, Sidi and Zheng, Lei and Guo, Jiaxian and Zhang, Weinan
          and Wang, Jun and Yu, Yong},
  booktitle={SIGIR}, year={2018}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumSelfBleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(self, predictions, tokenize="13a", lowercase=False, **kwargs):
        return {"self_bleu": self_bleu(predictions, tokenize=tokenize, lowercase=lowercase)}
