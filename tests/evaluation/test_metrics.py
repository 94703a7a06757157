"""Tests for spectrum_tune.evaluation.metrics against hand-computed values and invariants."""

import math
from itertools import combinations

import numpy as np
import pytest

from spectrum_tune.evaluation import metrics

LN2 = math.log(2)


# --- normalize_answer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('  "Paris."  ', "paris"),
        ('Paris".', "paris"),
        ("\u201cRome!\u201d", "rome"),
        ("New   York?\nsecond line ignored", "new york"),
        ("\n  Tokyo\n", "tokyo"),
        ("'Hello \t World'", "hello world"),
        ("Stra\u00dfe", "strasse"),
        ("3.14", "3.14"),  # inner punctuation is kept
        ("Wait...", "wait"),
        ("", ""),
        ("  ?! ", ""),
    ],
)
def test_normalize_answer_cases(raw: str, expected: str) -> None:
    assert metrics.normalize_answer(raw) == expected


@pytest.mark.parametrize("raw", ['  "Paris."  ', "'a.' \"", "x \u00ab y \u00bb.", "A\u00df?"])
def test_normalize_answer_is_idempotent(raw: str) -> None:
    once = metrics.normalize_answer(raw)
    assert metrics.normalize_answer(once) == once


# --- validity, accuracy, valid mass ---------------------------------------------------


def test_validity_flags_predicate_and_set() -> None:
    assert metrics.validity([True, False, True, True]) == 0.75
    assert metrics.validity(["1", "x", "22"], is_valid=str.isdigit) == pytest.approx(2 / 3)
    assert metrics.validity(["Red.", "blue", "pink"], ["red", "blue"]) == pytest.approx(2 / 3)
    assert math.isnan(metrics.validity([]))
    with pytest.raises(ValueError):
        metrics.validity(["a"], ["a"], is_valid=[True])


def test_accuracy_exact_match_after_normalisation() -> None:
    # "paris" matches 3 of 4 samples; "Paris, France" does not.
    assert metrics.accuracy(["Paris.", " paris", '"PARIS"', "Paris, France"], "Paris") == 0.75
    assert metrics.accuracy(["Paris."], "paris", normalize=False) == 0.0
    assert math.isnan(metrics.accuracy([], "x"))


def test_valid_mass() -> None:
    # exp(ln .1) + exp(ln .3) = 0.4; the invalid 0.2 is excluded
    s = np.log([0.1, 0.2, 0.3])
    assert metrics.valid_mass(s, [True, False, True]) == pytest.approx(0.4)
    assert metrics.valid_mass(s) == pytest.approx(0.6)
    assert metrics.valid_mass(s, [False, False, False]) == 0.0
    assert metrics.valid_mass([-math.inf, math.log(0.5)]) == pytest.approx(0.5)
    assert metrics.valid_mass([]) == 0.0


# --- coverage, yield, uniqueness, collision -------------------------------------------

VALID10 = list("abcdefghij")


def test_coverage_yield_unique() -> None:
    samples = ["a", "B.", "c", "a", "z"]  # valid: a, b, c, a (z invalid) -> 3 unique of 4
    assert metrics.coverage(samples, VALID10) == pytest.approx(0.3)  # 3 / 10
    assert metrics.yield_count(samples, VALID10) == 3
    assert metrics.unique_pct(samples, VALID10) == pytest.approx(0.75)  # 3 / 4
    assert metrics.raw_unique_pct(samples) == pytest.approx(0.8)  # {a, b, c, z} / 5
    assert metrics.validity(samples, VALID10) == pytest.approx(0.8)  # 4 / 5


def test_coverage_dedupes_valid_set_and_rejects_empty() -> None:
    # valid set {x, y} after normalisation; one of two covered
    assert metrics.coverage(["x"], ["x", "X.", "y"]) == 0.5
    with pytest.raises(ValueError):
        metrics.coverage(["x"], [])


def test_unique_pct_nan_without_valid_samples() -> None:
    assert math.isnan(metrics.unique_pct(["z"], VALID10))
    assert metrics.yield_count(["z"], VALID10) == 0
    assert math.isnan(metrics.raw_unique_pct([]))


def test_collision_hand_computed() -> None:
    # ["a", "a", "b"]: 3 pairs, 1 identical -> p = 1/3, se = sqrt((1/3)(2/3)/3) = sqrt(2/27)
    p, se = metrics.collision(["a", "a", "b"])
    assert p == pytest.approx(1 / 3)
    assert se == pytest.approx(math.sqrt(2 / 27))
    # ["a", "a", "b", "b"]: 6 pairs, 2 identical -> p = 1/3, se = sqrt((1/3)(2/3)/6) = sqrt(1/27)
    p, se = metrics.collision(["a", "a", "b", "b"])
    assert p == pytest.approx(1 / 3)
    assert se == pytest.approx(math.sqrt(1 / 27))


def test_collision_only_counts_valid_samples() -> None:
    # valid: a, a, a -> 3 pairs all identical -> p = 1, se = 0; "z" excluded
    assert metrics.collision(["a", "z", "a", "z", "a"], VALID10) == (1.0, 0.0)
    p, se = metrics.collision(["a"], VALID10)
    assert math.isnan(p) and math.isnan(se)


def test_collision_matches_brute_force_pairs() -> None:
    rng = np.random.default_rng(1)
    samples = [str(x) for x in rng.integers(0, 6, size=40)]
    same = sum(a == b for a, b in combinations(samples, 2))
    p, _ = metrics.collision(samples)
    assert p == pytest.approx(same / (40 * 39 / 2))


def test_distinct_k() -> None:
    texts = ["Paris", "paris.", "London", "Rome"]
    assert metrics.distinct_k(texts) == 3
    assert metrics.distinct_k(texts, k=2) == 1
    assert metrics.distinct_k(texts, k=100) == 3
    assert metrics.distinct_k([]) == 0
    with pytest.raises(ValueError):
        metrics.distinct_k(texts, k=0)


def test_distinct_k_custom_predicate_uses_greedy_representatives() -> None:
    first_letter = lambda a, b: a[0] == b[0]  # noqa: E731
    assert metrics.distinct_k(["apple", "avocado", "banana"], equivalent=first_letter) == 2
    # NoveltyBench compares with each class's first member, not transitively:
    # "aaa" joins "aa" (length diff 1), "aaaa" vs "aa" differs by 2 -> new class.
    close = lambda a, b: abs(len(a) - len(b)) <= 1  # noqa: E731
    assert metrics.distinct_k(["aa", "aaa", "aaaa"], equivalent=close) == 2


# --- divergences ------------------------------------------------------------------------


def test_js_identical_and_disjoint() -> None:
    p = [0.2, 0.3, 0.5]
    assert metrics.js_divergence(p, p) == 0.0
    assert metrics.js_divergence([1, 0], [0, 1]) == pytest.approx(LN2)
    assert metrics.js_divergence([3, 1, 0, 0], [0, 0, 2, 5]) == pytest.approx(LN2)


def test_js_hand_computed() -> None:
    # p=[1,0], q=[.5,.5], m=[.75,.25]
    # KL(p||m) = ln(4/3); KL(q||m) = .5 ln(.5/.75) + .5 ln(.5/.25) = .5 ln(4/3)
    # JS = .5 ln(4/3) + .25 ln(4/3) = .75 ln(4/3)
    assert metrics.js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(0.75 * math.log(4 / 3))
    assert metrics.js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(
        metrics.js_divergence([0.5, 0.5], [1, 0])
    )


def test_kl_hand_computed() -> None:
    # KL([.5,.5] || [.25,.75]) = .5 ln 2 + .5 ln(2/3) = .5 ln(4/3)
    assert metrics.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.5 * math.log(4 / 3))
    # inputs are normalised inside: [1,1] ~ [.5,.5], [1,3] ~ [.25,.75]
    assert metrics.kl_divergence([1, 1], [1, 3]) == pytest.approx(0.5 * math.log(4 / 3))
    # reverse: .25 ln(.25/.5) + .75 ln(.75/.5) = .25 ln .5 + .75 ln 1.5
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert metrics.kl_divergence([0.25, 0.75], [0.5, 0.5]) == pytest.approx(expected)
    # 3 elements with a zero in p: .5 ln(.5/.25) + .5 ln(.5/.25) + 0 = ln 2
    assert metrics.kl_divergence([0.5, 0.5, 0], [0.25, 0.25, 0.5]) == pytest.approx(LN2)
    assert metrics.kl_divergence([0.5, 0.5], [1, 0]) == math.inf


def test_total_variation_hand_computed() -> None:
    # .5 (|.5-.25| + |.5-.25| + |0-.5|) = .5
    assert metrics.total_variation([0.5, 0.5, 0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)
    assert metrics.total_variation([1, 0], [0, 1]) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [[], [-1, 2], [0, 0], [[0.5, 0.5]], [np.nan, 1]])
def test_divergence_rejects_bad_input(bad) -> None:
    with pytest.raises(ValueError):
        metrics.js_divergence(bad, [0.5, 0.5])


def test_divergence_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        metrics.total_variation([1, 1], [1, 1, 1])


def test_smooth() -> None:
    # [1,0] -> normalised [1,0] -> +.5 -> [1.5,.5] / 2 = [.75,.25]
    np.testing.assert_allclose(metrics.smooth([1, 0], eps=0.5), [0.75, 0.25])
    # scale invariant because it normalises first
    np.testing.assert_allclose(metrics.smooth([10, 0], eps=0.5), [0.75, 0.25])
    np.testing.assert_allclose(metrics.smooth([1, 3], eps=0), [0.25, 0.75])


def test_distribution_match_directions_and_smoothing() -> None:
    model, target = [0.25, 0.75], [0.5, 0.5]
    out = metrics.distribution_match(model, target, eps=0)
    assert out["kl"] == pytest.approx(metrics.kl_divergence(target, model))  # KL(target||model)
    assert out["reverse_kl"] == pytest.approx(metrics.kl_divergence(model, target))
    assert out["js"] == pytest.approx(metrics.js_divergence(model, target))
    assert out["tv"] == pytest.approx(0.25)
    # Disjoint: smoothing keeps both KLs finite; with eps=0.5 both sides become [.75,.25]
    # and [.25,.75], KL = .75 ln 3 + .25 ln(1/3) = .5 ln 3 in both directions.
    smoothed = metrics.distribution_match([1, 0], [0, 1], eps=0.5)
    assert smoothed["kl"] == pytest.approx(0.5 * math.log(3))
    assert smoothed["reverse_kl"] == pytest.approx(0.5 * math.log(3))
    default = metrics.distribution_match([1, 0], [0, 1])
    assert all(math.isfinite(v) for v in default.values())
    assert default["js"] == pytest.approx(LN2, abs=1e-4)


def test_score_distribution_match_softmaxes_logprobs() -> None:
    target = [0.2, 0.8]
    # softmax is shift invariant: unnormalised log-probs of a .2/.8 model match exactly
    logprobs = np.log([0.02, 0.08])
    out = metrics.score_distribution_match(logprobs, target)
    assert out["js"] == pytest.approx(0.0, abs=1e-12)
    assert out["kl"] == pytest.approx(0.0, abs=1e-12)
    assert metrics.score_distribution_match([0.0, 0.0], target, eps=0)["tv"] == pytest.approx(0.3)


# --- sample mode -------------------------------------------------------------------------


def test_empirical_distribution() -> None:
    samples = ["a", "B", "a.", "zzz", "c"]
    np.testing.assert_array_equal(metrics.empirical_distribution(samples, ["a", "b", "c"]), [2, 1, 1])
    with pytest.raises(ValueError):
        metrics.empirical_distribution(samples, ["a", "A"])  # duplicate after normalisation
    with pytest.raises(ValueError):
        metrics.empirical_distribution(samples, [])


def test_bootstrap_ci_deterministic_and_contains_point() -> None:
    data = np.random.default_rng(0).normal(size=200)
    low, high = metrics.bootstrap_ci(np.mean, data, n_boot=500, seed=3)
    assert low < data.mean() < high
    assert (low, high) == metrics.bootstrap_ci(np.mean, data, n_boot=500, seed=3)
    assert (low, high) != metrics.bootstrap_ci(np.mean, data, n_boot=500, seed=4)
    # rough check of width: 95% CI of a mean of 200 N(0,1) ~ +-1.96/sqrt(200) = +-0.139
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(200), rel=0.25)


def test_bootstrap_ci_lists_vectors_and_edges() -> None:
    low, high = metrics.bootstrap_ci(lambda xs: sum(xs) / len(xs), [1, 1, 1], n_boot=20)
    assert (low, high) == (1.0, 1.0)
    lows, highs = metrics.bootstrap_ci(lambda x: np.array([x.min(), x.max()]), np.arange(5.0))
    assert lows.shape == (2,) and np.all(lows <= highs)
    assert all(math.isnan(v) for v in metrics.bootstrap_ci(np.mean, []))
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(np.mean, [1.0], alpha=1.5)


def test_sample_distribution_match() -> None:
    support = ["a", "b", "c"]
    target = [0.5, 0.25, 0.25]
    exact = ["a", "a", "b", "c"] * 10 + ["invalid"] * 7  # matches target exactly
    out = metrics.sample_distribution_match(exact, support, target, n_boot=200, seed=0)
    assert out["n_in_support"] == 40
    for name in ("js", "kl", "reverse_kl", "tv"):
        assert out[name] == pytest.approx(0.0, abs=1e-12)
        assert out[f"{name}_ci_low"] <= out[name] + 1e-12 <= out[f"{name}_ci_high"] + 1e-12
    assert out == metrics.sample_distribution_match(exact, support, target, n_boot=200, seed=0)

    skewed = ["a"] * 30 + ["b"] * 10
    out = metrics.sample_distribution_match(skewed, support, target, n_boot=200, seed=0)
    counts = metrics.empirical_distribution(skewed, support)
    assert out["js"] == pytest.approx(metrics.distribution_match(counts, target)["js"])
    assert out["js_ci_low"] <= out["js"] <= out["js_ci_high"]

    none = metrics.sample_distribution_match(["x"], support, target, n_boot=10)
    assert none["n_in_support"] == 0 and math.isnan(none["js"])
    with pytest.raises(ValueError):
        metrics.sample_distribution_match(exact, support, [0.5, 0.5], n_boot=10)


# --- entropy and lexical diversity ------------------------------------------------------


def test_normalized_entropy() -> None:
    assert metrics.normalized_entropy(["a", "b", "c", "d"] * 5) == pytest.approx(1.0)
    # counts [2,1,1] over a support of 4: H = .5 ln 2 + 2 (.25 ln 4) = 1.5 ln 2;
    # / ln 4 = 1.5 ln 2 / (2 ln 2) = .75
    assert metrics.normalized_entropy(["a", "a", "b", "c"], support_size=4) == pytest.approx(0.75)
    assert metrics.normalized_entropy(counts=[2, 1, 1, 0]) == pytest.approx(0.75)
    # same samples, K = 3 distinct: 1.5 ln 2 / ln 3
    expected = 1.5 * LN2 / math.log(3)
    assert metrics.normalized_entropy(["a", "A.", "b", "c"]) == pytest.approx(expected)
    assert metrics.normalized_entropy(["x", "x"]) == 0.0
    assert math.isnan(metrics.normalized_entropy([]))
    with pytest.raises(ValueError):
        metrics.normalized_entropy(["a", "b", "c"], support_size=2)
    with pytest.raises(ValueError):
        metrics.normalized_entropy()


def test_distinct_n_hand_computed() -> None:
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 unique / 6
    assert metrics.distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: "the cat" x2, "cat sat", "cat ran" -> 3 unique / 4
    assert metrics.distinct_n(texts, 2) == pytest.approx(0.75)
    # trigrams: 2 unique / 2
    assert metrics.distinct_n(texts, 3) == 1.0
    assert math.isnan(metrics.distinct_n(["one two"], 3))
    with pytest.raises(ValueError):
        metrics.distinct_n(texts, 0)


def test_self_bleu() -> None:
    assert metrics.self_bleu(["the cat sat on the mat"] * 3) == pytest.approx(100.0)
    assert metrics.self_bleu(["alpha beta gamma", "one two three", "red green blue"]) == 0.0
    # "a b c d" vs "a b c e": precisions 3/4, 2/3, 1/2, and 0/1 -> exp smoothing 1/(2*1);
    # BLEU = 100 (.75 * 2/3 * .5 * .5)^(1/4) = 100 * .125^.25 = 59.4604; same both ways
    assert metrics.self_bleu(["a b c d", "a b c e"]) == pytest.approx(100 * 0.125**0.25)
    # Effective order for short texts: "a b" vs "a b c": p1 = 2/2, p2 = 1/1, no 3-grams, so
    # only orders 1-2 count; BP = exp(1 - 3/2) -> 100 e^-.5. "a b c" vs "a b": p1 = 2/3,
    # p2 = 1/2, p3 = 0/1 -> 1/2 by exp smoothing, no 4-grams; BP = 1 -> 100 (1/6)^(1/3).
    expected = (100 * math.exp(-0.5) + 100 * (1 / 6) ** (1 / 3)) / 2
    assert metrics.self_bleu(["a b", "a b c"]) == pytest.approx(expected)
    assert math.isnan(metrics.self_bleu(["only one"]))


# --- embeddings and Vendi ---------------------------------------------------------------


def test_vendi_identical_and_orthogonal() -> None:
    assert metrics.vendi_score(np.tile([[0.3, -1.0, 2.0]], (5, 1))) == pytest.approx(1.0)
    assert metrics.vendi_score(np.eye(4) * 3.0) == pytest.approx(4.0)
    assert metrics.vendi_score(similarity=np.ones((3, 3))) == pytest.approx(1.0)
    assert math.isnan(metrics.vendi_score(np.zeros((0, 3))))


def test_vendi_hand_computed() -> None:
    # cos = .5: eig(K/2) = (1 +- .5)/2 = .75, .25; H = -(.75 ln .75 + .25 ln .25)
    emb = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert metrics.vendi_score(emb) == pytest.approx(math.exp(h))
    with pytest.raises(ValueError):
        metrics.vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_embedding_diversity() -> None:
    assert metrics.embedding_diversity(np.eye(3)) == pytest.approx(1.0)
    assert metrics.embedding_diversity(np.ones((3, 2))) == pytest.approx(0.0)
    # pairs (cos 1, cos 0, cos 0) -> distances 0, 1, 1 -> mean 2/3
    assert metrics.embedding_diversity([[1, 0], [2, 0], [0, 1]]) == pytest.approx(2 / 3)
    assert math.isnan(metrics.embedding_diversity([[1.0, 2.0]]))


def test_tfidf_char_embeddings_hand_computed() -> None:
    # bigrams: "abc" -> ab, bc; "abd" -> ab, bd. n = 2 docs.
    # idf(ab) = ln(3/3) + 1 = 1; idf(bc) = idf(bd) = ln(3/2) + 1
    # cos = 1 / (1 + (1 + ln 1.5)^2)
    emb = metrics.tfidf_char_embeddings(["abc", "abd"], ngram_range=(2, 2))
    assert emb.shape == (2, 3)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0)
    assert emb[0] @ emb[1] == pytest.approx(1 / (1 + (1 + math.log(1.5)) ** 2))


def test_tfidf_char_embeddings_properties() -> None:
    emb = metrics.tfidf_char_embeddings(["Hello  World", "hello world", "xyz", "", "a"])
    np.testing.assert_allclose(emb[0], emb[1])  # lowercased, whitespace runs squeezed
    assert emb[0] @ emb[2] == 0.0
    # no 2-gram: "" and "a" share the pseudo-term, orthogonal to the rest
    assert emb[3] @ emb[4] == pytest.approx(1.0)
    assert emb[3] @ emb[0] == 0.0
    # ["ab","ab","cd"]: K = [[1,1,0],[1,1,0],[0,0,1]], eig(K/3) = 2/3, 1/3
    k = metrics.tfidf_char_embeddings(["ab", "ab", "cd"], ngram_range=(2, 2))
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert metrics.vendi_score(k) == pytest.approx(math.exp(h))
    assert metrics.tfidf_char_embeddings([]).shape == (0, 0)


def test_embed_texts_falls_back_to_tfidf() -> None:
    texts = ["one text", "another text"]
    expected = metrics.tfidf_char_embeddings(texts)
    np.testing.assert_allclose(metrics.embed_texts(texts), expected)
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.warns(UserWarning, match="sentence_transformers"):
            got = metrics.embed_texts(texts, model_path="/nonexistent")
        np.testing.assert_allclose(got, expected)
