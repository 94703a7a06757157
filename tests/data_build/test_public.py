"""Public distributions as training rows: GlobalOpinionQA train questions (disjoint from the eval
loaders' test questions) and synthetic draws with stated parameters, on a fixture of the real schema."""

import json
from pathlib import Path

import numpy as np
import pytest

from spectrum_tune.cli import main
from spectrum_tune.data_build.public import PUBLIC_SOURCES, public_rows
from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.benchmarks import load_benchmark
from spectrum_tune.evaluation.benchmarks.global_opinions import HUB_ID, question_split
from spectrum_tune.training.data import load_multiref

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "data_build" / "llm_global_opinions.csv"
TRAIN = {
    "How much do you trust your national government?",
    "Do you feel safe walking alone at night in your neighbourhood?",
}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """datasets.load_dataset(HUB_ID) reads the fixture (same columns and string encodings as the Hub)."""
    import datasets

    real = datasets.load_dataset

    def local(hub_id, split=None, **kwargs):
        assert (hub_id, split) == (HUB_ID, "train")
        return real("csv", data_files=str(FIXTURE), split="train", cache_dir=str(tmp_path))

    monkeypatch.setattr(datasets, "load_dataset", local)


def _question(prompt):
    return prompt[0]["content"].splitlines()


def test_training_questions_are_disjoint_from_the_eval_loaders(hub):
    rows = public_rows("globalopinionqa")
    trained = {line for row in rows for line in _question(row["prompt"]) if line in TRAIN}
    assert trained == TRAIN
    evaluated = set()
    for task in [*load_benchmark("globalopinionqa"), *load_benchmark("globalopinionqa_steer")]:
        for item in task.items:
            evaluated.update(_question(item.prompt))
    assert not evaluated & TRAIN
    assert "Would you say most people can be trusted?" in evaluated
    # the split is a function of the question alone
    assert {question_split(q) for q in TRAIN} == {"train"}
    import csv

    with FIXTURE.open() as handle:
        fixture_questions = {row["question"] for row in csv.DictReader(handle) if row["question"]}
    assert evaluated & fixture_questions == fixture_questions - TRAIN  # every other question is evaluated
    assert {question_split(q) for q in fixture_questions - TRAIN} == {"test"}


def test_opinion_rows_per_country_and_pooled(hub, tmp_path):
    rows = public_rows("globalopinionqa")
    assert public_rows(HUB_ID) == rows
    trust = [r for r in rows if "trust your national" in r["prompt"][0]["content"]]
    # Peru's two shares do not fit the three options: dropped as the eval loader drops them
    assert [r["metadata"]["country"] for r in trust] == ["Germany", "Brazil", "pooled"]
    assert trust[0]["references"] == ["A", "B", "C"] and trust[0]["weights"] == pytest.approx([0.1, 0.5, 0.4])
    assert "someone from Germany" in trust[0]["prompt"][0]["content"]
    assert trust[2]["weights"] == pytest.approx([0.075, 0.375, 0.55])
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_multiref(str(path))) == len(rows) == 6
    incontext = public_rows("globalopinionqa", render="incontext", outputs=8, seed=1)
    assert incontext[0]["description"].startswith("Survey answers of people in Germany to: How much")
    assert len(incontext[0]["outputs"]) == 8 and set(incontext[0]["outputs"]) <= {"A", "B", "C"}


@pytest.mark.parametrize("kind", ["coin", "urn", "poisson", "zipf", "uniform"])
def test_synthetic_rows_state_their_parameters_and_exact_targets(kind):
    rows = public_rows(kind, rows=20, seed=3)
    assert len(rows) == 20 and rows == public_rows(kind, rows=20, seed=3)
    for row in rows:
        params = row["metadata"]["parameters"]
        w = np.asarray(row["weights"])
        assert w.sum() == pytest.approx(1.0) and (w > 0).all()
        text = row["prompt"][0]["content"]
        if kind == "coin":
            assert str(params["p_heads"]) in text and w[0] == pytest.approx(params["p_heads"])
        elif kind == "urn":
            counts = params["counts"]
            assert w.tolist() == pytest.approx([counts[c] / sum(counts.values()) for c in row["references"]])
        elif kind == "poisson":
            mean = float(params["mean"])
            assert str(mean) in text
            implied = sum(int(k) * p for k, p in zip(row["references"], w, strict=True))
            assert implied == pytest.approx(mean, abs=0.02 * mean + 0.01)  # tail under 0.001 cut
        elif kind == "zipf":
            assert w[0] / w[1] == pytest.approx(2 ** params["exponent"])
        else:
            assert row["references"] == [str(k) for k in range(params["low"], params["high"] + 1)]


def test_synthetic_mix_incontext_rows_load(tmp_path):
    rows = public_rows("synthetic", rows=12, render="incontext", outputs=5)
    kinds = [r["metadata"]["distribution"] for r in rows]
    assert len(rows) == 12 and set(kinds) == {"coin", "urn", "poisson", "zipf", "uniform"}
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = load_multiref(str(path))
    assert set(dataset["format"]) == {"incontext"}


def test_cli_public_source_and_errors(tmp_path, capsys):
    assert main(["data-build", "public:coin", "--out", str(tmp_path / "c"), "--public-rows", "4"]) == 0
    assert "4 rows" in capsys.readouterr().out
    assert len((tmp_path / "c" / "rows.jsonl").read_text().splitlines()) == 4
    assert "target entropy" in (tmp_path / "c" / "report.md").read_text()
    assert main(["data-build", "public:dice", "--out", str(tmp_path / "d")]) == 2
    assert "unknown public source 'dice'" in capsys.readouterr().err
    with pytest.raises(SpectrumError, match="--render must be one of"):
        public_rows("coin", render="prose")
    assert set(PUBLIC_SOURCES) >= {"globalopinionqa", "synthetic"}
