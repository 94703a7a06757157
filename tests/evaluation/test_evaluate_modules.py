"""Tests for the Hugging Face `evaluate` wrappers in spectrum_tune/evaluate_modules.

The modules are loaded once, in a subprocess with the Hub, datasets and evaluate set
offline and an empty HF cache, so the test proves they load from the local path alone
(the offline switches are read when those libraries are imported, hence the subprocess).
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spectrum_tune.evaluation import metrics
from spectrum_tune.evaluation.evaluate_modules import METRIC_NAMES, module_path

ROOT = Path(__file__).resolve().parents[2]

SAMPLES = ["Paris", "paris.", "Rome", "Oslo", "nowhere"]
VALID = ["paris", "rome", "oslo", "bern", "vienna"]
TEXTS = ["the cat sat", "the cat ran", "a dog barked loudly"]
SUPPORT = ["paris", "rome", "oslo"]
TARGET = [0.5, 0.25, 0.25]

# name -> (module, evaluate.load kwargs, compute kwargs)
CASES = {
    "coverage": ("coverage", {}, {"predictions": SAMPLES, "valid_set": VALID}),
    "collision": ("spectrum_collision", {}, {"predictions": ["a", "a", "b"]}),
    "distinct_n": ("distinct_n", {}, {"predictions": TEXTS}),
    "distinct_3": ("distinct_n", {}, {"predictions": TEXTS, "ns": 3}),
    "self_bleu_same": ("self_bleu", {}, {"predictions": ["the cat sat on the mat"] * 3}),
    "self_bleu": ("self_bleu", {}, {"predictions": TEXTS}),
    "vendi": ("vendi", {}, {"predictions": [*TEXTS, TEXTS[0]]}),
    "js_samples": (
        "js_divergence",
        {},
        {
            "predictions": SAMPLES,
            "support": SUPPORT,
            "target": TARGET,
            "n_boot": 200,
            "seed": 1,
            "all_divergences": True,
        },
    ),
    "overtone": (
        "overtone",
        {},
        {
            "predictions": ["A loyal dog.", "Loyal dogs, independent cats.", "Neither."],
            "viewpoints": [
                {"text": "Dogs are loyal.", "keywords": ["loyal"]},
                {"text": "Cats are independent.", "keywords": ["independent"]},
            ],
        },
    ),
    "js_scores": (
        "js_divergence",
        {"config_name": "scores"},
        {"predictions": [0.0, -1e9], "references": [0.0, 1.0]},
    ),
}
COMBINED = ["coverage", "collision", "distinct_n", "self_bleu", "vendi", "js_divergence"]
COMBINED_KWARGS = {"predictions": SAMPLES, "valid_set": VALID, "support": SUPPORT, "n_boot": 50}

_SCRIPT = """
import json, sys
import evaluate
from spectrum_tune.evaluation.evaluate_modules import combine_metrics, load_metric, module_path

spec = json.load(sys.stdin)
out = {}
for name, (module, load_kwargs, kwargs) in spec["cases"].items():
    out[name] = load_metric(module, keep_in_memory=True, **load_kwargs).compute(**kwargs)
out["combined"] = evaluate.combine([module_path(n) for n in spec["combined"]]).compute(
    **spec["combined_kwargs"]
)
out["combined_helper"] = combine_metrics(spec["combined"]).compute(**spec["combined_kwargs"])
try:
    load_metric("coverage", keep_in_memory=True).compute(predictions=["a"])
except ValueError as err:
    out["missing_valid_set"] = str(err)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_HOME": str(tmp_path_factory.mktemp("hf_home")),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    spec = {"cases": CASES, "combined": COMBINED, "combined_kwargs": COMBINED_KWARGS}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_module_path_resolves_short_and_prefixed_names() -> None:
    for name in METRIC_NAMES:
        path = Path(module_path(name))
        assert path == Path(module_path("spectrum_" + name))
        assert (path / f"{path.name}.py").is_file()
    with pytest.raises(ValueError, match="unknown spectrum metric"):
        module_path("bleu")


def test_coverage_module(results: dict) -> None:
    # valid samples: paris, paris, rome, oslo (nowhere invalid) -> 3 unique of 4; 3 of 5 valid
    assert results["coverage"] == {
        "coverage": pytest.approx(0.6),
        "yield": 3,
        "unique_pct": pytest.approx(0.75),
        "raw_unique_pct": pytest.approx(0.8),  # {paris, rome, oslo, nowhere} / 5
        "validity": pytest.approx(0.8),
    }
    assert "valid_set" in results["missing_valid_set"]


def test_collision_module(results: dict) -> None:
    # 1 identical pair out of 3 -> 1/3, se = sqrt((1/3)(2/3)/3)
    assert results["collision"]["collision"] == pytest.approx(1 / 3)
    assert results["collision"]["collision_se"] == pytest.approx(math.sqrt(2 / 27))


def test_distinct_n_module(results: dict) -> None:
    # unigrams: 10 total, unique {the cat sat ran a dog barked loudly} = 8
    # bigrams: 2 + 2 + 3 = 7 total, "the cat" repeated -> 6 unique
    assert results["distinct_n"] == {
        "distinct_1": pytest.approx(0.8),
        "distinct_2": pytest.approx(6 / 7),
    }
    assert results["distinct_3"] == {"distinct_3": pytest.approx(metrics.distinct_n(TEXTS, 3))}


def test_self_bleu_module(results: dict) -> None:
    assert results["self_bleu_same"]["self_bleu"] == pytest.approx(100.0)
    assert results["self_bleu"]["self_bleu"] == pytest.approx(metrics.self_bleu(TEXTS))


def test_vendi_module(results: dict) -> None:
    texts = [*TEXTS, TEXTS[0]]
    emb = metrics.tfidf_char_embeddings(texts)
    assert results["vendi"]["vendi_score"] == pytest.approx(metrics.vendi_score(emb))
    assert results["vendi"]["embedding_diversity"] == pytest.approx(metrics.embedding_diversity(emb))
    assert 1.0 < results["vendi"]["vendi_score"] < 4.0  # one duplicate among 4 texts


def test_js_module_sample_mode(results: dict) -> None:
    expected = metrics.sample_distribution_match(SAMPLES, SUPPORT, TARGET, n_boot=200, seed=1)
    got = results["js_samples"]
    assert got["n_in_support"] == 4
    for short, key in [
        ("js", "js_divergence"),
        ("kl", "kl_divergence"),
        ("reverse_kl", "reverse_kl"),
        ("tv", "total_variation"),
    ]:
        for suffix in ("", "_ci_low", "_ci_high"):
            assert got[key + suffix] == pytest.approx(expected[short + suffix])


def test_js_module_score_mode(results: dict) -> None:
    # softmax([0, -1e9]) = [1, 0] vs target [0, 1]: disjoint -> ln 2 up to eps smoothing
    assert results["js_scores"]["js_divergence"] == pytest.approx(math.log(2), abs=1e-4)
    assert set(results["js_scores"]) == {"js_divergence"}


def test_combined_modules(results: dict) -> None:
    combined = results["combined"]
    assert combined == results["combined_helper"]
    assert combined["coverage"] == pytest.approx(0.6)
    # combine passes valid_set to every module, so collision is over valid samples: 1 of 6 pairs
    assert combined["collision"] == pytest.approx(1 / 6)
    assert combined["self_bleu"] == pytest.approx(metrics.self_bleu(SAMPLES))
    assert combined["vendi_score"] == pytest.approx(
        metrics.vendi_score(metrics.tfidf_char_embeddings(SAMPLES))
    )
    assert combined["distinct_1"] == pytest.approx(metrics.distinct_n(SAMPLES, 1))
    counts = metrics.empirical_distribution(SAMPLES, SUPPORT)
    assert combined["js_divergence"] == pytest.approx(metrics.distribution_match(counts, [1, 1, 1])["js"])
    assert np.isfinite(combined["js_divergence_ci_high"])


def test_overtone_module(results: dict) -> None:
    # per response 1/2, 2/2, 0/2 -> coverage 0.5; both viewpoints appear somewhere; one complete answer
    assert results["overtone"] == {
        "overtone_coverage": pytest.approx(0.5),
        "overtone_union": pytest.approx(1.0),
        "overtone_complete": pytest.approx(1 / 3),
    }
