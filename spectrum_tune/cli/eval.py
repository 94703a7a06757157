"""``spectrum-tune eval``: score accuracy and output spread of a model on task suites."""

from __future__ import annotations

import argparse
from pathlib import Path

from .parser import CommandParser

__all__ = ["EVAL_USAGE", "main"]

EVAL_USAGE = (
    "spectrum-tune eval (--model PATH_OR_NAME [--adapter PATH] [--gguf_file F] | --endpoint URL "
    "--served-model NAME [--tokenizer PATH] [--api_key_env VAR] [--concurrency C] [--timeout S] "
    "[--max_retries R] [--n_per_request N] [--no_seed] [--served_cache DIR]) --tasks SUITE_OR_FILE... "
    "[--mode sample|score|both] [--samples N] [--seed S] [--temperature T] [--top_p P] [--batch_size B] "
    "[--split heldout|tuned|all] [--published_eot] [--no_prefix_sharing] [--no_prefill_once] [--published] "
    "[--keep_generations N|all] [--novelty_classifier PATH] [--novelty_threshold T] [--reward_model PATH] "
    "[--verbalized K] --out DIR"
)


def _eval_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="spectrum-tune eval",
        usage=EVAL_USAGE,
        description="Score accuracy and output spread on task suites (eval/spread, eval/distribution, "
        "eval/accuracy, eval/steer) or task files; writes results.json, report.md and plots/. "
        "Steer tasks (in-context NLL) are scored in every mode.",
    )
    parser.add_argument("--model", help="model directory, Hub id, or spectrum-tune/tiny (or --endpoint)")
    parser.add_argument("--adapter", help="PEFT adapter directory to apply on top of --model")
    parser.add_argument("--gguf_file", help="GGUF file inside the --model directory")
    parser.add_argument(
        "--tasks", nargs="+", required=True, help="suite names (spread, ...) or task YAML files"
    )
    parser.add_argument("--mode", choices=("sample", "score", "both"), default="both")
    parser.add_argument("--samples", type=int, help="samples per item (overrides every task's 'samples')")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--temperature",
        type=float,
        help="sample mode: sampling temperature for every task "
        "(default: a task's own `temperature`, else 1.0: the model's distribution as it is)",
    )
    parser.add_argument(
        "--top_p",
        type=float,
        help="sample mode: nucleus sampling top-p for every task "
        "(default: a task's own `top_p`, else 1.0: no truncation)",
    )
    parser.add_argument("--batch_size", type=int, default=64, help="sequences per forward / generate call")
    parser.add_argument("--split", choices=("heldout", "tuned", "all"), default="all")
    parser.add_argument(
        "--published_eot",
        action="store_true",
        help="score mode: leave the end-of-turn token unscored, as the published Spectrum Tuning eval does",
    )
    parser.add_argument(
        "--no_prefix_sharing",
        action="store_true",
        help="score mode: forward every reference as a full sequence instead of encoding each prompt "
        "once and reusing its key/value cache (same log-probs; for debugging and timing)",
    )
    parser.add_argument(
        "--no_prefill_once",
        action="store_true",
        help="sample mode: let generate copy the prompt for every sample instead of encoding it once "
        "and continuing all samples from its key/value cache (same draws for the same seed; for "
        "debugging and timing)",
    )
    parser.add_argument(
        "--published",
        action="store_true",
        help="also report the published Spectrum Tuning metrics under their names (percent_valid, "
        "unique_gens_pct, ..., kl_divergence, ..., loss_geq_1, ...): exact match after strip, valid "
        "lists as given (see docs/metrics.md)",
    )
    parser.add_argument(
        "--keep_generations",
        type=_keep_count,
        default=10,
        metavar="N|all",
        help="raw generations kept per item in results.json (default 10; 'all' lets anyone recompute "
        "every sample metric, e.g. with scripts/recompute_published.py)",
    )
    parser.add_argument(
        "--novelty_classifier",
        help="free text: NoveltyBench pairwise equivalence classifier for long answers (a sequence-"
        "classification model path, or 'default' for yimingzhang/deberta-v3-large-generation-similarity)",
    )
    parser.add_argument(
        "--novelty_threshold",
        type=float,
        help="equivalence threshold for --novelty_classifier (default 0.102)",
    )
    parser.add_argument(
        "--reward_model", help="free text: reward model path for NoveltyBench utility_k (patience 0.8)"
    )
    parser.add_argument(
        "--overtone_judge",
        default="keywords",
        help="overtone tasks: 'keywords' (the viewpoints' keyword rules, default) or an NLI cross-encoder "
        "path or Hub id judging whether each answer entails each viewpoint (e.g. "
        "cross-encoder/nli-deberta-v3-base)",
    )
    parser.add_argument(
        "--verbalized",
        type=int,
        metavar="K",
        help="add the Verbalized Sampling arm: ask once per item for K answers with probabilities and "
        "score the stated distribution (metrics.verbalized)",
    )
    _served_arguments(parser)
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    return parser


def _served_arguments(parser: argparse.ArgumentParser) -> None:
    """The served-model flags; their help is :class:`ServedOptions`' field help."""
    from dataclasses import fields

    from ..evaluation.served import ServedOptions

    helps = {f.name: f.metadata["help"] for f in fields(ServedOptions)}
    group = parser.add_argument_group("served model (OpenAI-compatible endpoint: vLLM, SGLang, hosted APIs)")
    group.add_argument("--endpoint", help=helps["endpoint"])
    group.add_argument("--served-model", "--served_model", dest="served_model", help=helps["model"])
    group.add_argument("--tokenizer", help=helps["tokenizer"])
    group.add_argument("--api_key_env", default="OPENAI_API_KEY", help=helps["api_key_env"])
    group.add_argument("--concurrency", type=int, default=8, help=helps["concurrency"])
    group.add_argument("--timeout", type=float, default=300.0, help=helps["timeout"])
    group.add_argument("--max_retries", type=int, default=6, help=helps["max_retries"])
    group.add_argument("--n_per_request", type=int, default=64, help=helps["n_per_request"])
    group.add_argument(
        "--no_seed",
        action="store_true",
        help="send no per-request seed (vLLM's CPU build "
        "kills its engine on a seeded request; some servers reject seeds)",
    )
    group.add_argument("--served_cache", type=Path, help=helps["cache_dir"])


def served_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> object | None:
    """ServedOptions from the flags, or None for a local model; exactly one of the two is named."""
    from ..evaluation.served import ServedOptions

    if args.endpoint is None:
        if args.served_model or args.tokenizer:
            parser.error("--served-model and --tokenizer go with --endpoint")
        if args.model is None:
            parser.error("one of --model or --endpoint (with --served-model) is required")
        return None
    if args.model or args.adapter or args.gguf_file:
        parser.error("--endpoint evaluates a served model: leave out --model, --adapter and --gguf_file")
    if not args.served_model:
        parser.error("--endpoint needs --served-model (the name the server serves)")
    return ServedOptions(
        endpoint=args.endpoint,
        model=args.served_model,
        tokenizer=args.tokenizer,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        n_per_request=args.n_per_request,
        seed=not args.no_seed,
        cache_dir=args.served_cache,
    )


def _keep_count(value: str) -> int | None:
    if value == "all":
        return None
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a number >= 0 or 'all', got '{value}'")
    return int(value)


def main(argv: list[str]) -> int:
    """Run an eval; exit status 1 if any task failed (its error is in results.json)."""
    from ..evaluation.runner import EvalOptions, run_eval

    parser = _eval_parser()
    args = parser.parse_args(argv)
    served = served_options(args, parser)
    results = run_eval(
        EvalOptions(
            model=args.model or args.served_model,
            served=served,
            adapter=args.adapter,
            gguf_file=args.gguf_file,
            tasks=args.tasks,
            mode=args.mode,
            samples=args.samples,
            seed=args.seed,
            batch_size=args.batch_size,
            split=args.split,
            published_eot=args.published_eot,
            progress=not args.no_progress,
            prefix_sharing=not args.no_prefix_sharing,
            prefill_once=not args.no_prefill_once,
            published=args.published,
            keep_generations=args.keep_generations,
            novelty_classifier=args.novelty_classifier,
            novelty_threshold=args.novelty_threshold,
            reward_model=args.reward_model,
            verbalized=args.verbalized,
            overtone_judge=args.overtone_judge,
            temperature=args.temperature,
            top_p=args.top_p,
            out=args.out,
        )
    )
    failed = [name for name, task in results["tasks"].items() if task["status"] != "ok"]
    print(
        f"wrote {args.out / 'results.json'} and report.md: {len(results['tasks']) - len(failed)} task(s) ok, "
        f"{len(failed)} failed ({results['wall_seconds']['total']:.1f} s)"
    )
    for name in failed:
        print(f"failed: {name}: {results['tasks'][name]['error']}")
    return 1 if failed else 0
