"""Jensen-Shannon divergence (and optionally KL, reverse KL, TV) between model and target."""

import datasets
import evaluate
import numpy as np

from spectrum_tune.evaluation.metrics import sample_distribution_match, score_distribution_match

_DESCRIPTION = """\
Distribution match against a target distribution over a finite support, natural log
(JS in [0, ln 2]); both sides smoothed with eps (default 1e-6) as in Spectrum Tuning.
kl = KL(target || model), reverse_kl = KL(model || target), tv = total variation.

Config "default" (sample mode): predictions are sampled answers; they are normalised and
counted over `support` (samples outside it are dropped), and 95% percentile bootstrap
intervals are reported.
Config "scores" (score mode): predictions are the model's sequence log-probs of each
support element and references the target probabilities, aligned; the model side is
softmax(predictions).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: sampled answers (default config) or log-probs ("scores" config).
    references: target probabilities ("scores" config only).
    support (list of str): answer support (default config, required).
    target (list of float): target probabilities over support (default config; uniform
        if omitted).
    n_boot (int), seed (int), alpha (float): bootstrap settings (default config).
    eps (float): smoothing (default 1e-6).
    all_divergences (bool): also return kl_divergence, reverse_kl, total_variation.
Returns:
    js_divergence [, kl_divergence, reverse_kl, total_variation]; in the default config
    each also with _ci_low and _ci_high, plus n_in_support.
Examples:
    >>> metric = evaluate.load("spectrum_tune/evaluate_modules/spectrum_js_divergence")
    >>> metric.compute(predictions=["a", "b"], support=["a", "b"])["js_divergence"]
    0.0
"""

_CITATION = """\
@misc{sorensen2025spectrumtuning,
  title={Spectrum Tuning: Post-Training for Distributional Coverage and In-Context Steerability},
  author={Taylor Sorensen and others}, year={2025}, eprint={2510.06084}, archivePrefix={arXiv}
}
"""

_KEYS = {
    "js": "js_divergence",
    "kl": "kl_divergence",
    "reverse_kl": "reverse_kl",
    "tv": "total_variation",
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpectrumJsDivergence(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        if self.config_name == "scores":
            features = datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            )
        else:
            features = datasets.Features({"predictions": datasets.Value("string")})
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=features,
        )

    # **kwargs: evaluate.combine passes every module every keyword argument
    def _compute(
        self,
        predictions,
        references=None,
        support=None,
        target=None,
        n_boot=1000,
        seed=0,
        alpha=0.05,
        eps=1e-6,
        all_divergences=False,
        **kwargs,
    ):
        wanted = list(_KEYS) if all_divergences else ["js"]
        if self.config_name == "scores":
            match = score_distribution_match(predictions, references, eps)
            return {_KEYS[k]: match[k] for k in wanted}
        if support is None:
            raise ValueError("spectrum_js_divergence needs support=[...] in sample mode")
        if target is None:
            target = np.ones(len(support))
        match = sample_distribution_match(
            predictions, support, target, n_boot=n_boot, seed=seed, alpha=alpha, eps=eps
        )
        result = {"n_in_support": match["n_in_support"]}
        for k in wanted:
            for suffix in ("", "_ci_low", "_ci_high"):
                result[_KEYS[k] + suffix] = match[k + suffix]
        return result
