"""Score-mode vs sample-mode eval on the same tasks, and score mode with vs without prefix sharing.

    python -m benchmarks.bench_eval_modes [--tasks eval/spread/numbers_heldout_new_widths.yaml ...]
                                          [--samples 100] [--threads 1]

Default: the held-out numbers tasks of eval/spread on the tiny model (spectrum_tune.world). Sample
mode draws N samples per item (the harness default, N = 100); score mode computes the exact
log-prob of every listed valid output once. Both run in this process on the same loaded model;
time = median wall seconds of the whole task list over --repeats runs. Prints a SUMMARY line with
sample/score and naive/shared ratios.
"""

from __future__ import annotations

import argparse
import platform

import torch

from benchmarks.common import median_seconds

DEFAULT_TASKS = [
    "eval/spread/numbers_heldout_new_widths.yaml",
    "eval/spread/numbers_heldout_seen_widths.yaml",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS, help="task files or suite names")
    parser.add_argument("--samples", type=int, default=100, help="samples per item in sample mode")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spectrum_tune.evaluation.runner import load_for_eval
    from spectrum_tune.evaluation.sample import sample_task
    from spectrum_tune.evaluation.score import score_task
    from spectrum_tune.evaluation.tasks import resolve_tasks
    from spectrum_tune.world import tiny_model_path

    tasks = resolve_tasks(args.tasks)
    model, tokenizer = load_for_eval(str(tiny_model_path()))
    items = sum(len(task.items) for task in tasks)
    refs = sum(len(item.references) for task in tasks for item in task.items)
    print(
        f"# machine: {platform.machine()}, {args.threads} threads; tiny model; {len(tasks)} tasks, "
        f"{items} items, {refs} references, {args.samples} samples/item"
    )

    def score(prefix_sharing: bool) -> None:
        for task in tasks:
            score_task(model, tokenizer, task, batch_size=args.batch_size, prefix_sharing=prefix_sharing)

    def sample() -> None:
        for task in tasks:
            sample_task(
                model, tokenizer, task, samples=args.samples, batch_size=args.batch_size, progress=False
            )

    shared = median_seconds(lambda: score(True), repeats=args.repeats, warmup=1)
    naive = median_seconds(lambda: score(False), repeats=args.repeats, warmup=1)
    sampled = median_seconds(sample, repeats=args.repeats, warmup=1)
    print(f"score (prefix sharing)   {shared * 1e3:9.1f} ms")
    print(f"score (full sequences)   {naive * 1e3:9.1f} ms")
    print(f"sample (N={args.samples:<4d})         {sampled * 1e3:9.1f} ms")
    print(
        f"SUMMARY eval modes ({items} items): sample/score = {sampled / shared:.1f}x; "
        f"score full-sequence/prefix-shared = {naive / shared:.2f}x"
    )


if __name__ == "__main__":
    main()
