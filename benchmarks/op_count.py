"""Operator count of one optimizer step: SFTTrainer vs SpectrumTrainer, chunked and not.

    python -m benchmarks.op_count --k 16 64     # benchmarks.gpu's shapes (G=8, P=128, R=8), 12 layers

On a GPU a step whose tensors are small is bound by how many kernels it launches, not by its
arithmetic: on the H200 the spectrum rows of ``benchmarks.gpu`` took about 18 microseconds per
top-level aten operator at both K (docs/gpu.md). This counts those operators on any device with
``torch.profiler`` (hidden 64 by default, so it runs in seconds on a CPU; the count does not depend
on the width): a top-level operator is an ``aten::`` op not called from inside another one, about
one launch or a few on CUDA. Arms: ``sft`` (trl.SFTTrainer on the K x G sequences), ``spectrum`` at
``--chunk`` (two passes when the references exceed it), ``spectrum`` in one chunk, and
``spectrum-naive`` (no prefix sharing, one chunk).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import bench_trainer
from benchmarks.common import random_llama, training_step_fn


def top_level_ops(step) -> int:
    """Top-level ``aten::`` operators in one call of ``step`` (after a warm-up call)."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(
        1
        for event in prof.events()
        if event.name.startswith("aten::")
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    )


def main(argv: list[str] | None = None) -> list[dict]:
    from transformers import AutoTokenizer

    from spectrum_tune.world import tiny_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[16, 64], help="references per group")
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--output", type=int, default=8)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=64, help="spectrum_chunk_size of the chunked arm")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    results = []
    for k in args.k:
        shape = {"groups": args.groups, "prompt": args.prompt, "output": args.output, "k": k}
        groups = bench_trainer.token_groups(shape, len(tokenizer))
        one_chunk = args.groups * k
        for arm, chunk in (
            ("sft", args.chunk),
            ("spectrum", args.chunk),
            ("spectrum", one_chunk),
            ("spectrum-naive", one_chunk),
        ):
            model = random_llama(len(tokenizer), args.hidden, args.layers)
            trainer, rows = bench_trainer.build_trainer(arm, model, tokenizer, groups, chunk=chunk)
            ops = top_level_ops(training_step_fn(trainer, rows))
            results.append({"k": k, "arm": arm, "chunk": chunk, "ops": ops})
            label = arm if arm == "sft" else f"{arm}, chunk {chunk} ({-(-one_chunk // chunk)} chunk(s))"
            print(f"K={k:<4d} {label:40s} {ops:6d} top-level aten ops", flush=True)
    return results


if __name__ == "__main__":
    main()
