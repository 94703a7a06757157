"""Vendi score and mean pairwise cosine distance of text embeddings."""

import datasets
import evaluate

from spectrum_tune.evaluation.metrics import embed_texts, embedding_diversity, vendi_score

_DESCRIPTION = """\
Vendi score exp(H(eig(K/n))) with K the cosine similarity of text embeddings (1 for
identical texts, n for n orthogonal ones), and embedding_diversity = mean pairwise cosine
distance. Embeddings are L2-normalised character 2-4-gram TF-IDF by default, or a local
sentence-transformers model when model_path is given and the package is installed.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of str): generated texts.
    model_path (str, optional): local sentence-transformers model directory.
    ngram_range (tuple of int): inclusive character n-gram range for TF-IDF (default (2, 4)).
Returns:
    vendi_score, embedding_diversity.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_vendi")
    >>> metric.compute(predictions=["same text", "same text"])["vendi_score"]
    1.0
"""

_CITATION = """\
@article{friedman2023vendi,
  title={The Vendi Score: A Diversity Evaluation Metric for Machine Learning},
  author={Friedman, Dan and Dieng, Adji Bousso},
  journal={Transactions on Machine Learning Research}, year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumVendi(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(self, predictions, model_path=None, ngram_range=(2, 4), **kwargs):
        emb = embed_texts(predictions, model_path=model_path, ngram_range=tuple(ngram_range))
        return {"vendi_score": vendi_score(emb), "embedding_diversity": embedding_diversity(emb)}
