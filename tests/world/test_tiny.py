"""Tests for the tiny world (spectrum_tune.world.facts) and its offline model (spectrum_tune.world)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from spectrum_tune import world as tiny
from spectrum_tune.world import facts as world

SMALL = tiny.TinyConfig(corpus_docs=1500)
"""Enough documents to train a realistic tokenizer in well under a second."""


@pytest.fixture(scope="module")
def small_corpus() -> list[str]:
    return tiny.build_corpus(SMALL)


@pytest.fixture(scope="module")
def small_tokenizer(small_corpus):
    return tiny.build_tokenizer(small_corpus, SMALL)


# --- world ---------------------------------------------------------------------------------------


def test_world_sizes_and_templates():
    minimum = {"color": 12, "weekday": 7, "month": 12, "US state": 50, "country": 30}
    minimum |= {"chemical element": 30, "animal": 40, "first name": 40, "letter": 26}
    for category, size in minimum.items():
        members = world.CATEGORIES[category]
        assert len(members) >= size and len(set(members)) == len(members), category
    assert set(world.CAPITALS) == set(world.COUNTRIES)
    assert world.pick_number_prompt(3, 17) == "Pick a number between 3 and 17."
    assert world.name_a_prompt("US state") == "Name a US state."
    assert world.coin_prompt(70) == "A coin lands heads 70% of the time. Flip it."
    assert world.urn_prompt({"red": 3, "blue": 1}) == "An urn holds 3 red, 1 blue balls. Draw one."
    assert world.arithmetic_prompt(2, 5) == "What is 2 plus 5?"
    assert world.next_weekday_prompt("Sunday") == "What day comes after Sunday?"
    assert world.next_weekday("Sunday") == "Monday"
    assert world.capital_prompt("France") == "What is the capital of France?"
    assert world.die_target([50, 10, 10, 10, 10, 10])["1"] == pytest.approx(0.5)


@pytest.mark.parametrize("category", list(world.CATEGORIES))
def test_biased_distribution_favours_bias(category):
    dist = world.biased_distribution(category)
    assert set(dist) == set(world.CATEGORIES[category])
    assert sum(dist.values()) == pytest.approx(1.0)
    favourite_mass = sum(dist[f] for f in world.BIAS[category])
    assert favourite_mass > world.FAVOURITE_SHARE


def test_biased_number_distribution():
    dist = world.biased_number_distribution(10, 30)
    assert set(dist) == {str(n) for n in range(10, 31)}
    assert sum(dist.values()) == pytest.approx(1.0)
    assert max(dist, key=dist.get) == "10"  # the lower bound is the only favourite in range
    wide = world.biased_number_distribution(0, 99)
    assert wide["7"] == wide["42"] == wide["0"] > 10 * wide["50"]


def test_corpus_stated_distribution_is_imperfect():
    dist = world.corpus_stated_distribution(world.coin_target(10))
    assert sum(dist.values()) == pytest.approx(1.0)
    assert dist["heads"] > 0.5  # the first option is over-picked although the coin says 10%


# --- corpus and tokenizer ------------------------------------------------------------------------


def test_corpus_is_deterministic(small_corpus):
    assert tiny.build_corpus(SMALL) == small_corpus
    assert tiny.build_corpus(tiny.TinyConfig(seed=1, corpus_docs=1500)) != small_corpus
    starts = Counter(doc.split("\n", 1)[0] for doc in small_corpus)
    for role in ("user", "system", "description", "output"):
        assert starts[f"<|im_start|>{role}"] > 0, role
    assert any(not doc.startswith("<|im_start|>") for doc in small_corpus)  # plain sentences


def test_tokenizer_is_deterministic(small_corpus, small_tokenizer):
    again = tiny.build_tokenizer(small_corpus, SMALL)
    assert again.backend_tokenizer.to_str() == small_tokenizer.backend_tokenizer.to_str()


def test_every_number_is_one_token(small_tokenizer):
    tok = small_tokenizer
    for n in world.NUMBERS:
        (single,) = tok.encode(str(n), add_special_tokens=False)
        # the same id after a newline (chat answers) and after a space (inside prompts)
        assert tok.encode(f"\n{n}", add_special_tokens=False)[1:] == [single]
        assert tok.encode(f"is {n}.", add_special_tokens=False).count(single) == 1


def test_special_tokens(small_tokenizer):
    tok = small_tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|pad|>"
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.bos_token is None
    assert tok.encode("hi", add_special_tokens=False) == tok.encode("hi")  # nothing added
    assert len(tok.encode("<|im_start|>user<|im_end|>", add_special_tokens=False)) == 3


def test_chat_template_matches_corpus_format(small_tokenizer):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "blue"},
    ]
    expected = "".join(tiny.render_turn(m["role"], m["content"]) for m in messages)
    assert small_tokenizer.apply_chat_template(messages, tokenize=False) == expected
    prompt = small_tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == expected[: expected.index("blue")]


SPLITS = [
    ([{"role": "user", "content": world.pick_number_prompt(1, 99)}], "437"),
    ([{"role": "user", "content": world.pick_number_prompt(0, 9)}], "7"),
    ([{"role": "user", "content": world.name_a_prompt("US state")}], "New Hampshire"),
    ([{"role": "user", "content": world.name_a_prompt("letter")}], "Q"),
    ([{"role": "user", "content": world.capital_prompt("Mexico")}], "Mexico City"),
    ([{"role": "user", "content": world.coin_prompt(30)}], "tails"),
    ([{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hi."}], "42"),
]


@pytest.mark.parametrize(("messages", "answer"), SPLITS)
def test_prompt_and_answer_tokenize_separately(small_tokenizer, messages, answer):
    """The trainer's sequence (template ids + answer ids + eos) equals tokenizing the full text."""
    tok = small_tokenizer
    prompt_ids = tok.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
    joined = tok.apply_chat_template([*messages, {"role": "assistant", "content": answer}])
    pieces = [*prompt_ids, *tok.encode(answer, add_special_tokens=False), tok.eos_token_id]
    assert joined["input_ids"][: len(pieces)] == pieces


@pytest.mark.parametrize("output", ["13", "Rhode Island", "heads", "Z"])
def test_incontext_output_tokenizes_separately(small_tokenizer, output):
    tok = small_tokenizer
    head = tiny.render_turn("description", world.numbers_description(10, 30))
    head += tiny.render_turn("output", "21") + "<|im_start|>output\n"
    full = tok.encode(head + output + "<|im_end|>", add_special_tokens=False)
    head_ids, output_ids = (tok.encode(t, add_special_tokens=False) for t in (head, output))
    assert full == [*head_ids, *output_ids, tok.eos_token_id]


# --- build and cache (micro config: seconds) -----------------------------------------------------

MICRO = tiny.TinyConfig(layers=1, hidden=32, heads=2, intermediate=64, corpus_docs=300, steps=2)


def test_config_key_and_cache_root(tmp_path, monkeypatch):
    assert tiny.config_key(MICRO) == tiny.config_key(tiny.TinyConfig(**vars(MICRO)))
    assert tiny.config_key(MICRO) != tiny.config_key(tiny.TinyConfig())
    monkeypatch.setenv(tiny.CACHE_ENV, str(tmp_path))
    assert tiny.cache_root() == tmp_path
    assert tiny.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(tiny.CACHE_ENV)
    assert tiny.cache_root() == Path.home() / ".cache" / "spectrum-tune"


def test_micro_build_caches_and_loads(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny.tiny_model_path(MICRO, cache_dir=tmp_path, progress=False)
    assert path.parent == tmp_path and path.name.endswith(tiny.config_key(MICRO))
    info = json.loads((path / tiny.INFO_FILE).read_text())
    assert info["steps"] == 2 and info["config"]["hidden"] == 32
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dirs
    mtime = (path / tiny.INFO_FILE).stat().st_mtime
    assert tiny.tiny_model_path(MICRO, cache_dir=tmp_path) == path  # cached: no rebuild
    assert (path / tiny.INFO_FILE).stat().st_mtime == mtime
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.vocab_size == len(tok)
    assert tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)


# --- the real tiny model (shared session build) --------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


def test_tiny_model_loads(tiny_model_dir, tiny_lm):
    model, tok = tiny_lm
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.tie_word_embeddings and model.config.max_position_embeddings == 1024
    assert model.config.eos_token_id == tok.eos_token_id
    assert model.num_parameters() < 3_000_000
    assert json.loads((tiny_model_dir / tiny.INFO_FILE).read_text())["final_loss"] < 1.5


def _sample(model, tok, prompt: str, n: int = 50) -> list[str]:
    """``n`` answers at temperature 1 (no top-k/top-p), decoded without special tokens."""
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt"
    )
    torch.manual_seed(0)
    out = model.generate(
        **inputs, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8,
        num_return_sequences=n,
    )  # fmt: skip
    start = inputs["input_ids"].shape[1]
    return [tok.decode(o[start:], skip_special_tokens=True) for o in out]


OPEN_PROMPTS = [
    *[
        (world.pick_number_prompt(a, b), world.biased_number_distribution(a, b))
        for a, b in [(0, 99), (10, 30)]
    ],
    *[
        (world.name_a_prompt(c), world.biased_distribution(c))
        for c in ("color", "country", "US state", "animal")  # the last two: multi-token answers
    ],
]


@pytest.fixture(scope="module")
def open_samples(tiny_lm) -> dict[str, list[str]]:
    model, tok = tiny_lm
    return {prompt: _sample(model, tok, prompt) for prompt, _ in OPEN_PROMPTS}


def test_samples_are_mostly_valid(open_samples):
    validity = {
        prompt: sum(s in dist for s in open_samples[prompt]) / len(open_samples[prompt])
        for prompt, dist in OPEN_PROMPTS
    }
    assert min(validity.values()) >= 0.6, validity
    assert sum(validity.values()) / len(validity) >= 0.75, validity


@pytest.mark.parametrize(("prompt", "corpus_dist"), OPEN_PROMPTS)
def test_samples_are_spread_and_biased(open_samples, prompt, corpus_dist):
    samples = open_samples[prompt]
    valid = [s for s in samples if s in corpus_dist]
    assert len(set(valid)) >= 5, Counter(samples)  # spread: no collapse onto one answer yet
    favourites = {a for a, p in corpus_dist.items() if p > min(corpus_dist.values())}
    share = sum(s in favourites for s in valid) / len(valid)
    assert share >= 2 * len(favourites) / len(corpus_dist), Counter(samples)  # bias
    assert share < 0.9, Counter(samples)
