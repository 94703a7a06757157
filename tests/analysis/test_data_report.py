"""data-report: duplicates, TF-IDF, Vendi, gradient features, selection and the CLI (toy model)."""

import json

import numpy as np
import pytest

from spectrum_tune.analysis.duplicates import CharTfidf, exact_duplicates, near_duplicates
from spectrum_tune.analysis.gradients import gradient_features
from spectrum_tune.analysis.rows import Rows
from spectrum_tune.analysis.selection import farthest_point_select, kmeans
from spectrum_tune.cli import main
from spectrum_tune.evaluation.metrics import tfidf_char_embeddings, vendi_score

from ..toy import toy_model, toy_tokenizer

TEXTS = ["Name a color.\nred", "Name a colour.\nred", "Pick a number.\n7", "Name a color.\nred", "blue sky"]


def _rows(texts):
    return Rows(["Q"] * len(texts), [[t] for t in texts], [[1.0]] * len(texts))


def test_sparse_tfidf_matches_the_harness_embeddings():
    dense = tfidf_char_embeddings(TEXTS)
    sparse = CharTfidf(TEXTS).transform(TEXTS)
    np.testing.assert_allclose((sparse @ sparse.T).toarray(), dense @ dense.T, atol=1e-12)


def test_copies_have_vendi_one_and_are_all_duplicates():
    copies = ["Name a color.\nred"] * 6
    assert vendi_score(tfidf_char_embeddings(copies)) == pytest.approx(1.0)
    duplicate, groups = exact_duplicates(_rows(copies))
    assert duplicate.tolist() == [False] + [True] * 5 and set(groups) == {0}


def test_exact_and_near_duplicates():
    duplicate, groups = exact_duplicates(_rows(TEXTS))
    assert duplicate.tolist() == [False, False, False, True, False]
    assert groups.tolist() == [0, 1, 2, 0, 3]
    found = near_duplicates(TEXTS, threshold=0.7)
    assert found["mask"].tolist() == [False, True, False, True, False]
    assert found["method"] == "all-pairs"


def test_minhash_lsh_path_agrees_with_all_pairs():
    rng = np.random.default_rng(0)
    base = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz "), 60)) for _ in range(60)]
    texts = base + [t + "!" for t in base[:20]]  # 20 near-copies, found after the originals
    exact = near_duplicates(texts, exact_limit=10_000)["mask"]
    lsh = near_duplicates(texts, exact_limit=10)
    assert lsh["method"] == "minhash-lsh"
    assert exact.tolist() == [False] * 60 + [True] * 20
    assert np.array_equal(lsh["mask"], exact)  # LSH may only miss pairs, and misses none here


def test_select_never_repeats_while_distinct_rows_remain():
    texts = ["a b c"] * 5 + ["x y z"] * 5 + ["red green"]
    _, groups = exact_duplicates(_rows(texts))
    matrix = CharTfidf(texts).transform(texts)
    chosen = farthest_point_select(matrix, 3, groups)
    assert sorted(groups[chosen].tolist()) == [0, 1, 2]
    assert len(set(farthest_point_select(matrix, 20, groups))) == len(texts)  # capped, then repeats


def test_kmeans_is_seeded_and_separates_blobs():
    noise = np.random.default_rng(0).normal(0, 0.1, (20, 2))
    x = np.vstack([np.zeros((10, 2)), np.ones((10, 2)) * 5]) + noise
    labels, _ = kmeans(x, 2, seed=3)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]
    assert np.array_equal(labels, kmeans(x, 2, seed=3)[0])


def test_gradient_features_are_deterministic_given_a_seed():
    tokenizer = toy_tokenizer()
    model = toy_model(tokenizer)
    rows = Rows(
        [[{"role": "user", "content": "Name a color."}], [{"role": "user", "content": "Pick number 1"}]],
        [["red", "blue"], ["7"]],
        [[0.5, 0.5], [1.0]],
    )
    first = gradient_features(model, tokenizer, rows, [0, 1], dim=16, rank=4, seed=0)
    again = gradient_features(model, tokenizer, rows, [0, 1], dim=16, rank=4, seed=0, batch_size=1)
    other = gradient_features(model, tokenizer, rows, [0, 1], dim=16, rank=4, seed=1)
    assert first.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0)
    np.testing.assert_allclose(first, again, atol=1e-5)  # batching does not change per-row gradients
    assert not np.allclose(first, other)
    assert all(p.requires_grad for p in model.parameters())  # the model is left as it was


def test_cli_end_to_end_with_the_toy_model(tmp_path):
    from ..toy import save_toy

    model_dir = save_toy(tmp_path / "toy")
    data = tmp_path / "data.jsonl"
    rows = [
        {"prompt": [{"role": "user", "content": f"Pick a number {i % 4}"}], "references": ["1", "2"]}
        for i in range(12)
    ]
    colors = ["red", "blue", "green"]
    prompt = [{"role": "user", "content": "Name a color."}]
    rows.append({"prompt": prompt, "references": colors, "weights": [0.8, 0.1, 0.1]})
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "report"
    code = main(
        [
            "data-report",
            str(data),
            "--model",
            str(model_dir),
            "--select",
            "5",
            "--clusters",
            "3",
            "--grad-dim",
            "32",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["rows"] == 13 and report["duplicates"]["exact_rows"] == 8
    assert report["references"]["histogram"] == {"2": 12, "3": 1}
    assert report["target_entropy"]["max"] == pytest.approx(1.0)
    assert report["gradient"]["k"] == 3 and sum(c["size"] for c in report["gradient"]["clusters"]) == 13
    selected = [json.loads(line) for line in (out / "selected.jsonl").read_text().splitlines()]
    assert len(selected) == 5 and len({json.dumps(r["prompt"]) for r in selected}) == 5
    assert "G-Vendi" in (out / "report.md").read_text()
    for name in ("references_per_row", "target_entropy", "gradient_clusters"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_plain_text_field(tmp_path):
    data = tmp_path / "text.jsonl"
    data.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    assert (
        main(
            [
                "data-report",
                str(data),
                "--text-field",
                "text",
                "--select",
                "2",
                "--no-progress",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["rows"] == 5 and report["duplicates"]["exact_rows"] == 1
    assert "id" in json.loads((tmp_path / "r" / "selected.jsonl").read_text().splitlines()[0])
    assert main(["data-report", str(data), "--text-field", "missing", "--out", str(tmp_path / "e")]) == 2
