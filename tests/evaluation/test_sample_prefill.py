"""Sample mode's encode-once path (prefill_once) against the copied-prompt path it replaces.

``generate`` draws one multinomial per step over the whole batch from the global RNG in both
paths, so for the same seed they draw the same tokens: the tests ask for identical samples
(stops, stop strings, ``max_new_tokens``, several batches, temperature/top-p, every model family,
a sliding window shorter than the prompt, PEFT), plus a chi-square test of the two distributions
under different seeds, which does not rely on that coincidence of RNG streams.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import pytest
import torch

from spectrum_tune.evaluation import prompt_cache
from spectrum_tune.evaluation.sample import generate_samples
from spectrum_tune.training.tokenize import _prompt_ids

from ..families.builders import FAMILIES, build_model, build_tokenizer
from ..toy import toy_model

CHAT = [{"role": "user", "content": "Name a color. Pick a number between 1 and 10."}]
pytestmark = pytest.mark.usefixtures("one_thread")


def _both(model, tokenizer, prompt, n, **kwargs):
    old = generate_samples(model, tokenizer, prompt, n, prefill_once=False, **kwargs)
    new = generate_samples(model, tokenizer, prompt, n, prefill_once=True, **kwargs)
    return old, new


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_new_tokens=6, stop=(), batch_size=64),
        dict(max_new_tokens=9, stop=(" ", "e"), batch_size=5),  # stop strings; 3 batches of 5, 5, 3
        dict(max_new_tokens=4, stop=("\n",), batch_size=8, temperature=0.7, top_p=0.8),
        dict(max_new_tokens=1, stop=(), batch_size=13),
    ],
    ids=["plain", "stop-strings-batches", "temperature-top-p", "one-token"],
)
def test_same_seed_same_draws_as_the_copied_prompt_path(model, tokenizer, kwargs):
    for seed in (0, 1):
        old, new = _both(model, tokenizer, CHAT, 13, seed=seed, **kwargs)
        assert len(new) == 13 and new == old
    again = generate_samples(model, tokenizer, CHAT, 13, seed=1, **kwargs)
    other = generate_samples(model, tokenizer, CHAT, 13, seed=2, **kwargs)
    assert again == new and other != new


def test_stops_and_lengths_match_on_a_model_that_ends_its_turns(model, tokenizer):
    # make the end-of-turn likely, so samples end at different steps within one batch
    bias = torch.zeros(len(tokenizer))
    bias[tokenizer.convert_tokens_to_ids("<|im_end|>")] = 5.0
    hook = model.lm_head.register_forward_hook(lambda module, args, out: out + bias)
    try:
        old, new = _both(model, tokenizer, CHAT, 24, seed=0, max_new_tokens=7, stop=(), batch_size=24)
        capped = generate_samples(
            model, tokenizer, CHAT, 24, seed=0, max_new_tokens=2, stop=(), batch_size=24
        )
    finally:
        hook.remove()
    assert new == old
    assert "" in new and len({len(s) for s in new}) > 2  # ended at different steps
    # max_new_tokens cuts the same draws: each capped sample is a prefix of its longer twin
    assert all(long.startswith(short) for short, long in zip(capped, new, strict=True))
    assert sum(len(s) for s in capped) < sum(len(s) for s in new)


def _chi2_pvalue(first: Counter, second: Counter) -> float:
    """Two-sample chi-square homogeneity p-value; answers seen < 10 times in all are pooled."""
    from scipy.stats import chi2_contingency

    common = sorted(t for t in first.keys() | second.keys() if first[t] + second[t] >= 10)
    rows = [[c[t] for t in common] + [sum(c.values()) - sum(c[t] for t in common)] for c in (first, second)]
    return float(chi2_contingency(rows).pvalue)


def test_distributions_agree_under_different_seeds(tiny_model_dir):
    """Two paths, different seeds, 400 draws each on the tiny world model: a two-sample
    chi-square test at a 0.1% false-alarm rate (deterministic seeds: it passes or fails for good)."""
    from spectrum_tune.evaluation.runner import load_for_eval

    model, tokenizer = load_for_eval(str(tiny_model_dir))
    prompt = [{"role": "user", "content": "Pick a number between 13 and 22."}]
    kwargs = dict(max_new_tokens=4, batch_size=200)

    def counts(seed, **extra):
        return Counter(generate_samples(model, tokenizer, prompt, 400, seed=seed, **kwargs, **extra))

    old, new = counts(10, prefill_once=False), counts(11)
    assert len([t for t in old if old[t] >= 10]) >= 5  # a real spread, not one favourite answer
    assert _chi2_pvalue(old, new) > 1e-3
    assert _chi2_pvalue(old, counts(11, temperature=0.5)) < 1e-3  # and the test can fail


@pytest.mark.parametrize("family", FAMILIES, ids=[family.name for family in FAMILIES])
def test_every_family_draws_the_same(family):
    tokenizer = build_tokenizer(family)
    model = build_model(family, tokenizer).eval()
    prompt = [{"role": "user", "content": "Name a color."}] if family.template else "Name a color."
    old, new = _both(model, tokenizer, prompt, 10, seed=0, max_new_tokens=5, stop=(), batch_size=4)
    assert new == old


def test_sliding_window_shorter_than_the_prompt_is_shared_exactly():
    gemma = next(family for family in FAMILIES if family.name == "gemma3")
    family = dataclasses.replace(gemma, config={**gemma.config, "sliding_window": 4})
    tokenizer = build_tokenizer(family)
    model = build_model(family, tokenizer).eval()
    model.generation_config.cache_implementation = "hybrid"  # what Gemma checkpoints ship
    ids = torch.tensor([_prompt_ids(CHAT, tokenizer)])
    assert ids.size(1) > 3 * 4
    cache, reason = prompt_cache.encode_prompt(model, ids)
    assert reason is None and cache is not None  # shared, not fallen back
    old, new = _both(model, tokenizer, CHAT, 12, seed=0, max_new_tokens=6, stop=(), batch_size=5)
    assert new == old


def test_peft_lora_is_shared_and_prompt_tuning_falls_back_once(model, tokenizer, caplog):
    from peft import LoraConfig, PromptTuningConfig, get_peft_model

    ids = torch.tensor([[5, 6, 7, 8]])
    lora = get_peft_model(
        toy_model(tokenizer), LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    ).eval()
    assert prompt_cache.encode_prompt(lora, ids)[1] is None
    old, new = _both(lora, tokenizer, CHAT, 9, seed=0, max_new_tokens=5, stop=(), batch_size=4)
    assert new == old
    prompt_tuning = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
    tuned = get_peft_model(toy_model(tokenizer), prompt_tuning).eval()
    assert "prompt learning" in prompt_cache.encode_prompt(tuned, ids)[1]
    prompt_cache._NOTICED.clear()
    with caplog.at_level(logging.WARNING, logger=prompt_cache.__name__):
        old, new = _both(tuned, tokenizer, CHAT, 6, seed=0, max_new_tokens=4, stop=(), batch_size=4)
        generate_samples(tuned, tokenizer, CHAT, 6, seed=0, max_new_tokens=4, stop=())
    assert new == old
    notices = [r for r in caplog.records if "encodes the prompt per sample" in r.getMessage()]
    assert len(notices) == 1  # said once


def test_unexpandable_caches_and_rope_switches_fall_back(model, tokenizer):
    lfm2 = next(family for family in FAMILIES if family.name == "lfm2")
    lfm2_tokenizer = build_tokenizer(lfm2)
    hybrid = build_model(lfm2, lfm2_tokenizer).eval()
    reason = prompt_cache.encode_prompt(hybrid, torch.tensor([[3, 4, 5, 6]]))[1]
    assert reason is not None and "layers" in reason
    assert prompt_cache.encode_prompt(model, torch.tensor([[5]]))[1] == "the prompt is a single token"
    phi3 = next(family for family in FAMILIES if family.name == "phi3")  # longrope, threshold 24
    phi_model = build_model(phi3, build_tokenizer(phi3)).eval()
    assert "longrope" in prompt_cache.encode_prompt(phi_model, torch.arange(3, 28)[None])[1]  # 25 tokens
    assert prompt_cache.encode_prompt(phi_model, torch.arange(3, 29)[None])[1] is None  # 26: both long


def test_each_path_is_taken_and_processors_send_it_to_generate(tokenizer, monkeypatch):
    from spectrum_tune.evaluation import sample

    model = toy_model(tokenizer).eval()
    taken = []
    own, generate = sample.sample_rows, sample._generate
    monkeypatch.setattr(sample, "sample_rows", lambda *a, **k: taken.append("own") or own(*a, **k))

    def spy(*args, **kwargs):
        taken.append("cache" if args[4] is not None else "copied")
        return generate(*args, **kwargs)

    monkeypatch.setattr(sample, "_generate", spy)
    kwargs = dict(seed=0, max_new_tokens=5, stop=(), batch_size=4)
    generate_samples(model, tokenizer, CHAT, 6, **kwargs)
    assert taken == ["own", "own"]
    # a processor only generate applies (the checkpoint suppresses a token): generate decodes from the cache
    suppressed = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.suppress_tokens = [suppressed]
    taken.clear()
    old, new = _both(model, tokenizer, CHAT, 6, **kwargs)
    assert taken == ["copied", "copied", "cache", "cache"] and new == old
    assert all(s for s in new)  # the end-of-turn never drawn, so no sample ends before 5 tokens


def test_eval_flag_selects_the_copied_prompt_path_with_the_same_results(tmp_path, monkeypatch):
    import json

    from spectrum_tune.cli import main
    from spectrum_tune.evaluation import sample

    from ..toy import save_toy

    model_dir = save_toy(tmp_path / "toy")
    (tmp_path / "colors.yaml").write_text(
        "name: colors\nsplit: heldout\nmax_new_tokens: 4\nitems:\n"
        '  - {prompt: "Name a color.", references: [red, blue]}\n'
    )
    flags = []
    real = sample.generate_samples

    def spy(*args, **kwargs):
        flags.append(kwargs["prefill_once"])
        return real(*args, **kwargs)

    monkeypatch.setattr(sample, "generate_samples", spy)
    runs = {}
    for name, extra in (("once", []), ("copied", ["--no_prefill_once"])):
        argv = [
            "eval",
            "--model",
            str(model_dir),
            "--tasks",
            str(tmp_path / "colors.yaml"),
            "--mode",
            "sample",
            "--samples",
            "12",
            "--keep_generations",
            "all",
            "--no_progress",
            "--out",
            str(tmp_path / name),
            *extra,
        ]
        assert main(argv) == 0
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())["tasks"]["colors"]
    assert flags == [True, False]
    assert runs["once"]["items"] == runs["copied"]["items"]  # same generations, counts and metrics
