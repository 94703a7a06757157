"""Local sampler vs a served model on the same tasks, side by side: samples/s and agreement.

    python -m benchmarks.bench_served --endpoint http://127.0.0.1:8000/v1 --served-model tiny \\
        --model DIR [--tasks eval/spread/names_colors.yaml ...] [--samples 100] [--concurrency 8]

``--model`` is the same checkpoint the server serves (loaded here for the local backend and as
the served backend's tokenizer). Sample mode runs every task through the local backend, then
through the endpoint (no response cache: every request reaches the server); score mode gives both
backends' exact log-probs of every reference. Prints samples/s of each, the largest score-mode
log-prob difference, and per task the JS divergence between the two backends' answer counts (two
independent samples of the same model: small, not zero). On a GPU machine, start
``vllm serve DIR --served-model-name tiny --dtype float32`` and run the same command. vLLM's CPU
build (0.32) kills its engine on a seeded request ("CPU Generator does not use offset"): pass
``--no-seed`` there.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

DEFAULT_TASKS = [
    "eval/spread/names_colors.yaml",
    "eval/spread/names_weekdays.yaml",
    "eval/spread/numbers_heldout_new_widths.yaml",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--served-model", required=True)
    parser.add_argument("--model", required=True, help="the checkpoint the server serves")
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-seed", action="store_true", help="send no seed (vLLM CPU 0.32 crashes on one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spectrum_tune.analysis.homogeneity import counts_js
    from spectrum_tune.evaluation.local import LocalBackend
    from spectrum_tune.evaluation.runner import load_for_eval
    from spectrum_tune.evaluation.sample import sample_task
    from spectrum_tune.evaluation.score import score_task
    from spectrum_tune.evaluation.served import ServedBackend, ServedOptions
    from spectrum_tune.evaluation.tasks import resolve_tasks

    tasks = resolve_tasks(args.tasks)
    model, tokenizer = load_for_eval(args.model)
    backends = {
        "local": LocalBackend(model, tokenizer, batch_size=args.batch_size),
        "served": ServedBackend(
            ServedOptions(
                args.endpoint,
                args.served_model,
                tokenizer=args.model,
                concurrency=args.concurrency,
                n_per_request=args.batch_size,
                seed=not args.no_seed,
            )
        ),
    }
    server = backends["served"].describe()
    n_items = sum(len(task.items) for task in tasks)
    print(
        f"# {platform.machine()}, {args.threads} local threads; {len(tasks)} tasks, {n_items} items, "
        f"{args.samples} samples/item; server {server['host']} version {server['server_version']}"
    )
    counts: dict[str, list] = {}
    for name, backend in backends.items():
        start = time.perf_counter()
        counts[name] = [
            sample_task(backend, None, task, samples=args.samples, progress=False) for task in tasks
        ]
        seconds = time.perf_counter() - start
        print(
            f"sample {name:7s} {n_items * args.samples:6d} samples in {seconds:7.2f} s = "
            f"{n_items * args.samples / seconds:8.1f} samples/s"
        )
    for task, local, served in zip(tasks, counts["local"], counts["served"], strict=True):
        js = [counts_js(a["counts"], b["counts"]) for a, b in zip(local, served, strict=True)]
        print(f"  {task.name}: JS(local counts, served counts) mean {np.mean(js):.4f} over {len(js)} items")
    worst = 0.0
    for task in tasks:
        if not any(item.references for item in task.items):
            continue
        local = score_task(backends["local"], None, task)
        served = score_task(backends["served"], None, task)
        for a, b in zip(local, served, strict=True):
            if a is not None:
                worst = max(worst, float(np.max(np.abs(np.subtract(a["logprobs"], b["logprobs"])))))
    print(f"SUMMARY score mode: max |log p_local - log p_served| = {worst:.2e} (float32)")


if __name__ == "__main__":
    main()
