"""SpectrumTrainer vs plain trl.SFTTrainer on the same tokens, and memory against K.

    python benchmarks/bench_trainer.py                 # step time + peak memory vs SFTTrainer
    python benchmarks/bench_trainer.py --k-sweep       # peak memory at K = 16, 32, 128, 1000
    python benchmarks/bench_trainer.py --model 50m     # a ~50M-parameter random Llama
    python benchmarks/bench_trainer.py --k-sweep --model smollm2   # the sweep on SmolLM2-135M (offline)
    python benchmarks/bench_trainer.py --trl-defaults  # one epoch with TRL's defaults, checkpointing on/off

Each configuration runs in its own subprocess (so peak memory is its own) on the same random
token groups: G groups of a P-token prompt and K references of R tokens. "sft" is trl.SFTTrainer
on the K x G flattened prompt+reference sequences; "spectrum-naive" is SpectrumTrainer on the
groups without prefix sharing (same tokens through the model); "spectrum" is the default
(prefix sharing on). Time = median optimizer step (forward, backward, AdamW). Memory = peak of
live tensor bytes during one step after warm-up, above the level at its start (activations,
gradients, temporaries; the weights and AdamW state already exist): torch.profiler's memory
events on CPU, torch.cuda.max_memory_allocated on GPU (see benchmarks.common.peak_tensor_mib).
Peak RSS growth over the process is printed too ("rss"), but on CPU it is dominated by one-time
costs (thread pools, oneDNN kernels, allocator arenas) and does not show how memory scales.

``--trl-defaults`` times what a user with TRL's defaults gets: one ``trainer.train()`` epoch of 64
prompts x 8 references (P=24, R=4) on a random Llama (hidden 256, 4 layers), SpectrumTrainer
(8 groups per batch) vs trl.SFTTrainer on the same 512 sequences (64 per batch, so the same
sequences in each of the 8 steps), every other setting TRL's default (bf16 only where supported),
with gradient checkpointing on (TRL's default) and off; best of ``--rounds`` runs, the arms
alternated, each run in its own process; memory is one step's peak as above.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

MODELS = {
    "tiny": None,
    "50m": {"hidden": 768, "layers": 8},
    "256x4": {"hidden": 256, "layers": 4},
    "smollm2": "smollm2",
}


def token_groups(config: dict, vocab: int) -> list[dict]:
    """G random groups: a P-token prompt and K references of R tokens, each ending in id 2."""
    import torch

    generator = torch.Generator().manual_seed(0)
    draw = lambda n: torch.randint(3, vocab, (n,), generator=generator).tolist()  # noqa: E731
    groups = []
    for _ in range(config["groups"]):
        prompt = draw(config["prompt"])
        completions = [[*draw(config["output"] - 1), 2] for _ in range(config["k"])]
        groups.append({"prompt_ids": prompt, "completion_ids": completions})
    return groups


def build_trainer(
    arm: str,
    model,
    tokenizer,
    groups: list[dict],
    *,
    chunk: int = 64,
    bf16: bool = False,
    peft_config=None,
    groups_per_batch: int | None = None,
    **overrides,
):
    """``(trainer, rows)`` for one arm on the same token groups: "sft" is trl.SFTTrainer on the K x G
    flattened sequences, "spectrum-naive" / "spectrum" SpectrumTrainer without / with prefix sharing;
    one batch holds every row, or ``groups_per_batch`` groups (SFTTrainer: their sequences).
    ``overrides`` replace the config values set here (e.g. ``gradient_checkpointing``)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from spectrum_tune import SpectrumConfig, SpectrumTrainer

    common = dict(
        output_dir="/tmp/bench-trainer",
        report_to=[],
        save_strategy="no",
        bf16=bf16,
        gradient_checkpointing=False,
        max_length=None,
        learning_rate=1e-4,
    )
    common.update(overrides)
    k = len(groups[0]["completion_ids"])
    if groups_per_batch is not None:
        batch = {"sft": groups_per_batch * k, "spectrum": groups_per_batch}
    if arm == "sft":
        rows = [
            {"input_ids": g["prompt_ids"] + c, "completion_mask": [0] * len(g["prompt_ids"]) + [1] * len(c)}
            for g in groups
            for c in g["completion_ids"]
        ]
        size = len(rows) if groups_per_batch is None else batch["sft"]
        trainer = SFTTrainer(
            model,
            args=SFTConfig(per_device_train_batch_size=size, **common),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        return trainer, len(rows)
    rows = [
        {
            **g,
            "completion_mask": [[1] * len(c) for c in g["completion_ids"]],
            "weights": [1.0 / len(g["completion_ids"])] * len(g["completion_ids"]),
        }
        for g in groups
    ]
    size = len(rows) if groups_per_batch is None else batch["spectrum"]
    trainer = SpectrumTrainer(
        model,
        args=SpectrumConfig(
            per_device_train_batch_size=size,
            spectrum_chunk_size=chunk,
            spectrum_prefix_sharing=arm == "spectrum",
            **common,
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    return trainer, len(rows)


def epoch_worker(config: dict) -> dict:
    """One ``train()`` epoch with TRL's defaults (but gradient checkpointing as given), then one
    step's peak tensor memory."""
    import time

    import torch

    from benchmarks.common import bench_model, peak_tensor_mib, training_step_fn

    model, tokenizer = bench_model(MODELS[config["model"]], config["threads"])
    groups = token_groups(config, len(tokenizer))
    arm = config["arm"]
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    # TRL's defaults but one epoch (TRL: 3), no saving, reporting or progress bar
    trl_values = dict(max_length=1024, learning_rate=2e-5)  # what build_trainer sets otherwise
    trainer, _ = build_trainer(
        arm,
        model,
        tokenizer,
        groups,
        bf16=bf16,
        groups_per_batch=config["batch"],
        gradient_checkpointing=config["checkpointing"],
        num_train_epochs=1,
        disable_tqdm=True,
        logging_strategy="no",
        **trl_values,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    rows = config["batch"] * (config["k"] if arm == "sft" else 1)
    memory = peak_tensor_mib(training_step_fn(trainer, rows))
    return {**config, "seconds": seconds, "peak_mib": memory}


def trl_defaults(base: dict, rounds: int) -> None:
    """Print the ``--trl-defaults`` table: best of ``rounds`` alternated runs per arm."""
    shape = dict(groups=64, k=8, prompt=24, output=4, batch=8, model="256x4")
    arms = [(arm, on) for on in (True, False) for arm in ("sft", "spectrum-naive", "spectrum")]
    best: dict[tuple, dict] = {}
    for _ in range(rounds):
        for arm, on in arms:
            result = run({**base, **shape, "arm": arm, "checkpointing": on, "epoch": True})
            key = (arm, on)
            if key not in best or result["seconds"] < best[key]["seconds"]:
                best[key] = {**result, "peak_mib": min(result["peak_mib"], best.get(key, result)["peak_mib"])}
    summary = []
    for on in (True, False):
        sft = best[("sft", on)]
        for arm in ("sft", "spectrum-naive", "spectrum"):
            r = best[(arm, on)]
            print(
                f"checkpointing {'on ' if on else 'off'} {arm:15s} epoch {r['seconds']:7.2f} s  "
                f"peak tensors +{r['peak_mib']:7.1f} MiB  time {r['seconds'] / sft['seconds']:.2f}x  "
                f"memory {r['peak_mib'] / max(sft['peak_mib'], 1e-9):.2f}x"
            )
        r = best[("spectrum", on)]
        summary.append(
            f"checkpointing {'on' if on else 'off'}: time {r['seconds'] / sft['seconds']:.2f}x "
            f"memory {r['peak_mib'] / max(sft['peak_mib'], 1e-9):.2f}x"
        )
    print(
        f"SUMMARY TRL defaults, SpectrumTrainer vs SFTTrainer epoch (64 prompts x 8 refs, P=24, R=4, "
        f"hidden 256 x 4 layers, best of {rounds}): " + "; ".join(summary)
    )


def worker(config: dict) -> dict:
    from benchmarks.common import bench_model, median_seconds, peak_rss_mib, peak_tensor_mib, training_step_fn

    model, tokenizer = bench_model(MODELS[config["model"]], config["threads"])
    groups = token_groups(config, len(tokenizer))
    trainer, rows = build_trainer(config["arm"], model, tokenizer, groups, chunk=config["chunk"])
    step = training_step_fn(trainer, rows)
    before = peak_rss_mib()

    seconds = median_seconds(step, repeats=config["repeats"], warmup=config.get("warmup", 2))
    rss = peak_rss_mib() - before
    memory = peak_tensor_mib(step)  # after the timed steps: AdamW state exists, as in training
    params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    return {**config, "seconds": seconds, "peak_mib": memory, "rss_mib": rss, "params_m": round(params, 1)}


def run(config: dict) -> dict:
    from benchmarks.common import run_worker

    return run_worker("benchmarks.bench_trainer", config)


def main() -> None:
    parser = argparse.ArgumentParser(description="SpectrumTrainer vs SFTTrainer; memory vs K")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(MODELS), default="tiny")
    parser.add_argument("--k-sweep", action="store_true")
    parser.add_argument(
        "--k-values", type=int, nargs="+", default=[16, 32, 128, 1000], help="--k-sweep: the K values"
    )
    parser.add_argument(
        "--trl-defaults",
        action="store_true",
        help="one epoch with TRL's defaults, gradient checkpointing on and off",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--trl-defaults: alternated runs per arm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.worker:
        config = json.loads(args.worker)
        print(json.dumps(epoch_worker(config) if config.get("epoch") else worker(config)))
        return
    base = dict(model=args.model, threads=args.threads, repeats=args.repeats, chunk=64)
    model = "256x4" if args.trl_defaults else args.model
    print(
        f"# machine: {platform.machine()}, {args.threads} threads, model {model}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    if args.trl_defaults:
        trl_defaults(base, args.rounds)
        return
    if args.k_sweep:
        sweep = {**base, "arm": "spectrum", "groups": 1, "prompt": 32, "output": 4, "chunk": 16, "repeats": 2}
        if args.model == "smollm2":  # ~2 min a K=1000 step on one thread: one warm-up, one timed step
            sweep.update(repeats=1, warmup=1)
        # K=16 is one chunk (no recompute); K=32 is the smallest two-pass step, so K=1000/K=32 shows
        # whether the two-pass path grows with K and K=1000/K=16 includes its fixed extra cost.
        results = []
        for k in args.k_values:  # each line as it comes: a K=1000 step on a real model takes minutes
            r = run({**sweep, "k": k})
            results.append(r)
            print(
                f"K={r['k']:5d}  step {r['seconds'] * 1e3:8.1f} ms  "
                f"peak tensors +{r['peak_mib']:7.1f} MiB  "
                f"(rss +{r['rss_mib']:7.1f} MiB)",
                flush=True,
            )
        peak = {r["k"]: max(r["peak_mib"], 1e-9) for r in results}
        if {16, 32, 1000} <= set(peak):
            print(
                f"SUMMARY peak tensor memory K=1000 / K=16 = {peak[1000] / peak[16]:.2f}x "
                f"(target <= 1.2x); K=1000 / K=32 = {peak[1000] / peak[32]:.2f}x (chunk 16, both two-pass)"
            )
        return
    shape = dict(groups=4, prompt=24, output=4, k=8)
    results = {arm: run({**base, **shape, "arm": arm}) for arm in ("sft", "spectrum-naive", "spectrum")}
    for arm, r in results.items():
        print(
            f"{arm:15s} step {r['seconds'] * 1e3:8.1f} ms  peak tensors +{r['peak_mib']:7.1f} MiB  "
            f"(rss +{r['rss_mib']:7.1f} MiB, {r['params_m']}M params)"
        )
    sft = results["sft"]
    print(
        "SUMMARY vs SFTTrainer on the same tokens ("
        f"{shape['groups']} groups x K={shape['k']}, P={shape['prompt']}, R={shape['output']}): "
        + "; ".join(
            f"{arm} time {r['seconds'] / sft['seconds']:.2f}x memory "
            f"{r['peak_mib'] / max(sft['peak_mib'], 1e-9):.2f}x"
            for arm, r in results.items()
            if arm != "sft"
        )
    )


if __name__ == "__main__":
    main()
