"""Sample mode: the prompt encoded once (``prefill_once``, the default) vs copied per sample.

    python -m benchmarks.bench_sample [--model tiny|smollm2|PATH] [--tasks FILE...] [--items K]
                                      [--samples 30 100] [--max-new-tokens T] [--repeats 1] [--threads 1]

Both paths run in this process on the same loaded model, over the same items (the first --items
of the task files, default: all), with the task's max_new_tokens, stop strings and per-item
seeds, exactly as ``sample_task`` calls them; time = median wall seconds of the whole item list
over --repeats runs (the runs alternate between the paths). The two paths draw the same tokens for
the same seed, so the script also checks that their samples are identical. Per item it reports
the prompt length P and the mean sample length R (in tokens, re-tokenised), and prints the ideal
speed-up ``(P + G)·n / (P + G·n)`` with G the decode steps a batch runs (its longest sample), the
limit for a path that still decodes every row of a batch until the last one ends.
Prints a SUMMARY line with the old/new ratio per n.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

DEFAULT_TASKS = ["eval/spread/numbers_heldout_seen_widths.yaml"]


def _load(name: str):
    from spectrum_tune.evaluation.runner import load_for_eval
    from spectrum_tune.models import resolve_model
    from spectrum_tune.world import tiny_model_path

    if name == "tiny":
        return load_for_eval(str(tiny_model_path()))
    path, gguf = resolve_model(name if "/" in name else f"spectrum-tune/{name}")
    return load_for_eval(path, gguf_file=gguf)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, smollm2 or a model path")
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS, help="task files or suite names")
    parser.add_argument("--split", default="all", choices=("heldout", "tuned", "all"))
    parser.add_argument("--items", type=int, help="only the first K items (over all tasks)")
    parser.add_argument("--samples", type=int, nargs="+", default=[30, 100], help="n per item")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        help="override every task's max_new_tokens (e.g. 4: a tuned model's short answers)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from spectrum_tune.evaluation.sample import generate_samples, item_seed
    from spectrum_tune.evaluation.tasks import resolve_tasks
    from spectrum_tune.training.tokenize import _prompt_ids

    start = time.perf_counter()
    model, tokenizer = _load(args.model)
    load_s = time.perf_counter() - start
    jobs = [
        (task, index, item)
        for task in resolve_tasks(args.tasks, args.split)
        for index, item in enumerate(task.items)
    ][: args.items]
    prompt_lengths = [len(_prompt_ids(item.prompt, tokenizer)) for _, _, item in jobs]
    print(
        f"# machine: {platform.machine()}, {args.threads} threads; model {args.model} (loaded in "
        f"{load_s:.0f} s); {len(jobs)} items of {args.tasks}; prompt tokens P mean "
        f"{statistics.mean(prompt_lengths):.1f}; batch size {args.batch_size}"
        + (f"; max_new_tokens {args.max_new_tokens}" if args.max_new_tokens else "")
    )

    def limit(task) -> int:
        return args.max_new_tokens or task.max_new_tokens

    def run(n: int, prefill_once: bool) -> list[list[str]]:
        return [
            generate_samples(
                model,
                tokenizer,
                item.prompt,
                n,
                max_new_tokens=limit(task),
                stop=task.stop,
                batch_size=args.batch_size,
                seed=item_seed(args.seed, task.name, index),
                prefill_once=prefill_once,
            )
            for task, index, item in jobs
        ]

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    summary = []
    run(2, True)  # warm-up (thread pools, first-call allocations)
    for n in args.samples:
        times: dict[bool, list[float]] = {False: [], True: []}
        outputs: dict[bool, list[list[str]]] = {}
        for _ in range(args.repeats):
            for prefill_once in (False, True):
                start = time.perf_counter()
                outputs[prefill_once] = run(n, prefill_once)
                times[prefill_once].append(time.perf_counter() - start)
        old, new = (statistics.median(times[flag]) for flag in (False, True))
        identical = outputs[False] == outputs[True]
        lengths = [[tokens(s) for s in samples] for samples in outputs[True]]
        mean_r = statistics.mean(r for row in lengths for r in row)
        # a batch decodes until its longest sample ends (+1 for the stop token, capped)
        ideal = [
            (p + g) * n / (p + g * n)
            for p, row, (task, _, _) in zip(prompt_lengths, lengths, jobs, strict=True)
            for g in [min(max(row) + 1, limit(task))]
        ]
        print(
            f"n={n:<4d} copied prompt {old:8.2f} s   encoded once {new:8.2f} s   ratio {old / new:5.2f}x   "
            f"identical draws: {'yes' if identical else 'NO'}   mean R {mean_r:.1f} tokens; "
            f"ideal for full-batch decoding {statistics.mean(ideal):.2f}x"
        )
        summary.append(f"n={n} {old / new:.2f}x")
    print(
        f"SUMMARY sample mode ({args.model}, {len(jobs)} items): copied-prompt / encoded-once = "
        + ", ".join(summary)
    )


if __name__ == "__main__":
    main()
