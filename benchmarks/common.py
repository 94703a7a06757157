"""Shared pieces of the benchmarks: a random Llama of a chosen size, timing, peak memory."""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable

import torch


def random_llama(vocab: int, hidden: int, layers: int, seed: int = 0):
    """A randomly initialised Llama-style causal LM (the benchmarks measure cost, not quality)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1), num_key_value_heads=max(hidden // 64, 1),
        max_position_embeddings=4096, tie_word_embeddings=True, pad_token_id=0, eos_token_id=1,
    )
    return LlamaForCausalLM(config)


def median_seconds(step: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    """Median wall time of ``step`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    gc.collect()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
