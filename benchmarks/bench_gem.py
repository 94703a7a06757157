"""GEM vs the NLL (TRL fused CE head) path of SpectrumTrainer on the same single-reference tokens.

    python benchmarks/bench_gem.py                       # tiny model (V = 2103), 1 thread
    python benchmarks/bench_gem.py --model head          # head-heavy: V = 32768, hidden 256, 2 layers
    python benchmarks/bench_gem.py --model 50m --h logsigmoid

Each arm runs in its own subprocess (so its peak memory is its own) on the same random rows:
G prompts of P tokens, each with one R-token reference (K = 1), so every row takes the
`spectrum_loss_type` path. Arms: "nll" (the default config: TRL's fused CE head, prefix sharing
on), "nll-naive" (prefix sharing off: the same full-sequence forward as GEM, so the ratio isolates
the head) and "gem". Time = median optimizer step (forward, backward, AdamW; full fine-tune, so the
LM head's weight gradient is included); memory = peak RSS growth during the steps (CPU) or
torch.cuda.max_memory_allocated (GPU). The arms alternate for `--rounds` rounds and each reports
its median over rounds, so load from other processes hits every arm alike.
Target: GEM <= 1.10x the NLL step time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

MODELS = {
    "tiny": None,
    "head": {"hidden": 256, "layers": 2, "vocab": 32768},
    "50m": {"hidden": 768, "layers": 8},
}


def single_reference_rows(config: dict, vocab: int) -> list[dict]:
    """G rows of a P-token prompt and one R-token reference ending in id 2."""
    import torch

    generator = torch.Generator().manual_seed(0)
    draw = lambda n: torch.randint(3, vocab, (n,), generator=generator).tolist()  # noqa: E731
    return [
        {
            "prompt_ids": draw(config["prompt"]),
            "completion_ids": [[*draw(config["output"] - 1), 2]],
            "completion_mask": [[1] * config["output"]],
            "weights": [1.0],
        }
        for _ in range(config["groups"])
    ]


def build_trainer(arm: str, model, tokenizer, rows: list[dict], *, h: str = "linear", bf16: bool = False):
    """SpectrumTrainer on single-reference rows: "nll" (fused CE head, prefix sharing), "nll-naive"
    (full sequences, the same forward as GEM) or "gem"; one batch holds every row."""
    from datasets import Dataset

    from spectrum_tune import SpectrumConfig, SpectrumTrainer

    args = SpectrumConfig(
        output_dir="/tmp/bench-gem",
        report_to=[],
        save_strategy="no",
        bf16=bf16,
        gradient_checkpointing=False,
        max_length=None,
        learning_rate=1e-4,
        per_device_train_batch_size=len(rows),
        spectrum_loss_type="gem" if arm == "gem" else "nll",
        spectrum_prefix_sharing=arm == "nll",
        gem_beta=0.7,
        gem_h=h,
    )
    return SpectrumTrainer(
        model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )


def worker(config: dict) -> dict:
    import torch

    from benchmarks.common import bench_model, median_seconds, peak_rss_mib, training_step_fn

    model, tokenizer = bench_model(MODELS[config["model"]], config["threads"])
    # Tokens below the tokenizer's size exist in every model here (the head model's vocab is larger).
    rows = single_reference_rows(config, len(tokenizer))
    trainer = build_trainer(config["arm"], model, tokenizer, rows, h=config["h"])
    step = training_step_fn(trainer, len(rows))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    before = peak_rss_mib()

    seconds = median_seconds(step, repeats=config["repeats"])
    memory = (
        torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else peak_rss_mib() - before
    )
    params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    return {
        **config,
        "seconds": seconds,
        "peak_mib": memory,
        "params_m": round(params, 1),
        "vocab": trainer.model.config.vocab_size,
    }


def run(config: dict) -> dict:
    from benchmarks.common import run_worker

    return run_worker("benchmarks.bench_gem", config)


def main() -> None:
    parser = argparse.ArgumentParser(description="GEM vs NLL step time and peak memory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(MODELS), default="tiny")
    parser.add_argument("--h", choices=["linear", "logsigmoid"], default="linear")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--prompt", type=int, default=24)
    parser.add_argument("--output", type=int, default=32)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    base = dict(
        model=args.model,
        h=args.h,
        threads=args.threads,
        repeats=args.repeats,
        groups=args.groups,
        prompt=args.prompt,
        output=args.output,
    )
    print(f"# machine: {platform.machine()}, {args.threads} threads, model {args.model}, h={args.h}")
    arms = ("nll", "nll-naive", "gem")
    runs = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm in arms:
            runs[arm].append(run({**base, "arm": arm}))
    results = {}
    for arm, rs in runs.items():
        results[arm] = {
            **rs[0],
            "seconds": statistics.median(r["seconds"] for r in rs),
            "peak_mib": statistics.median(r["peak_mib"] for r in rs),
        }
        r = results[arm]
        spread = ", ".join(f"{x['seconds'] * 1e3:.0f}" for x in rs)
        print(
            f"{arm:9s} step {r['seconds'] * 1e3:8.1f} ms (rounds: {spread})  "
            f"peak +{r['peak_mib']:7.1f} MiB  ({r['params_m']}M params, V={r['vocab']})"
        )
    gem = results["gem"]
    ratios = "; ".join(
        f"vs {arm} time {gem['seconds'] / results[arm]['seconds']:.2f}x memory "
        f"{gem['peak_mib'] / max(results[arm]['peak_mib'], 1e-9):.2f}x"
        for arm in arms[:2]
    )
    print(
        f"SUMMARY GEM on the same tokens ({args.groups} rows x K=1, P={args.prompt}, R={args.output}, "
        f"model {args.model}, h={args.h}, {args.threads} thread(s)): {ratios} (target time <= 1.10x)"
    )


if __name__ == "__main__":
    main()
