"""Prefix-shared vs naive loss (forward+backward) and scoring (forward) at K = 16.

    python benchmarks/bench_prefix.py [--hidden 256 --layers 4 --output-tokens 4]

Both paths run in this process on the same batch, alternated, best of ``--repeats`` rounds each;
prints one line per prompt:output ratio and a summary line with the speed-ups. Ideal speed-up:
(P + R)·K / (P + R·K).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from benchmarks.common import random_llama, synchronize
from spectrum_tune.training.collator import SpectrumCollator


def make_groups(prompt_len: int, output_len: int, k: int, groups: int, vocab: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(groups):
        prompt = torch.randint(2, vocab, (prompt_len,), generator=generator).tolist()
        completions = [
            [*torch.randint(2, vocab, (output_len - 1,), generator=generator).tolist(), 1] for _ in range(k)
        ]
        rows.append(
            {
                "prompt_ids": prompt,
                "completion_ids": completions,
                "completion_mask": [[1] * output_len] * k,
                "weights": [1.0 / k] * k,
            }
        )
    return rows


def best_alternated(steps: list, repeats: int, warmup: int = 2) -> list[float]:
    """Best wall time of each step over ``repeats`` rounds that run every step once in turn, so a
    change of load on a shared machine falls on all of them alike."""
    for _ in range(warmup):
        for run in steps:
            run()
    best = [float("inf")] * len(steps)
    for _ in range(repeats):
        for i, run in enumerate(steps):
            synchronize()
            start = time.perf_counter()
            run()
            synchronize()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--output-tokens", type=int, default=4)
    parser.add_argument("--ratios", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7, help="alternated rounds; the best of each is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.trainer_utils import set_seed

    from spectrum_tune import SpectrumConfig
    from spectrum_tune.training.losses import spectrum_loss_per_group
    from spectrum_tune.training.trainer import SpectrumTrainer
    from spectrum_tune.world import tiny_model_path

    set_seed(0)
    model = random_llama(args.vocab, args.hidden, args.layers)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"# machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"load {os.getloadavg()[0]:.1f}; model {params:.1f}M params; K={args.k}, {args.groups} groups, "
        f"R={args.output_tokens}"
    )
    # A real trainer (its fused LM head, chunking and prefix checks); one chunk holds every sequence.
    config = SpectrumConfig(
        output_dir="/tmp/bench-prefix",
        report_to=[],
        save_strategy="no",
        gradient_checkpointing=False,
        spectrum_chunk_size=10_000,
    )
    rows = make_groups(4, args.output_tokens, args.k, 1, args.vocab)
    trainer = SpectrumTrainer(
        model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_path()),
    )
    model = trainer.model
    model.train()

    def step(batch, train: bool) -> None:
        with torch.set_grad_enabled(train):
            logps, _, _ = trainer._sequence_logps(model, batch)
            if train:
                grid = logps.view(args.groups, args.k)
                spectrum_loss_per_group(grid, batch["weights"], batch["ref_mask"]).loss.sum().backward()
                model.zero_grad(set_to_none=True)

    summary = []
    for ratio in args.ratios:
        prompt_len = ratio * args.output_tokens
        rows = make_groups(prompt_len, args.output_tokens, args.k, args.groups, args.vocab)
        naive, shared = (
            trainer._prepare_inputs(SpectrumCollator(0, prefix_sharing=sharing)(rows))
            for sharing in (False, True)
        )
        speedups = {}
        line = [f"P:R={ratio}:1 (P={prompt_len}, R={args.output_tokens})"]
        for train in (True, False):
            naive_s, shared_s = best_alternated(
                [
                    lambda batch=naive, train=train: step(batch, train),
                    lambda batch=shared, train=train: step(batch, train),
                ],
                args.repeats,
            )
            name = "loss fwd+bwd" if train else "scoring"
            speedups[name] = naive_s / shared_s
            line.append(
                f"{name} naive {naive_s * 1e3:.1f} ms, shared {shared_s * 1e3:.1f} ms "
                f"-> {naive_s / shared_s:.2f}x"
            )
        p, r, k = prompt_len, args.output_tokens, args.k
        line.append(f"ideal {(p + r) * k / (p + r * k):.2f}x")
        print(" | ".join(line))
        summary.append(f"{ratio}:1 train {speedups['loss fwd+bwd']:.2f}x score {speedups['scoring']:.2f}x")
    print(f"SUMMARY prefix sharing speed-up (K={args.k}): " + "; ".join(summary))


if __name__ == "__main__":
    main()
