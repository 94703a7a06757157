"""The ``spectrum-tune`` command: train, tiny-model, validate (eval/compare/demo join later)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .errors import SpectrumError

USAGE = """spectrum-tune <command> [options]

commands:
  train       fine-tune with a recipe: --config recipes/tiny-spectrum.yaml [--key value ...]
  validate    check a data file (and, with --model, token lengths) without training
  tiny-model  build (or find in the cache) the tiny offline model and print its path
  models      real models usable offline: fetch|path smollm2 (SmolLM2-135M-Instruct GGUF)
  demo        the end-to-end demo: --out runs/demo [--seeds 3] [--quick] [--model tiny|smollm2]
  eval        score accuracy and spread: --model M --tasks spread ... [--mode sample|score|both] --out DIR
  compare     side-by-side table and charts of eval runs: DIR_A DIR_B ... [--labels a b ...] --out DIR
  data-report diversity of a training set: DATA [--model M] [--select N] [--text-field F] --out DIR
  push        share a run on the Hub: RUN_DIR --repo-id OWNER/NAME [--eval DIR] [--private] [--dry-run]
"""


def _cmd_train(argv: list[str]) -> int:
    from .recipe import parse_train_args
    from .train import run_training

    if not argv or argv[0] in {"-h", "--help"}:
        from .recipe import _parser

        _parser().print_help()
        return 0
    summary = run_training(*parse_train_args(argv))
    print(
        f"trained {summary['global_steps']} steps in {summary['wall_seconds']} s "
        f"(loss {summary['first_logged_loss']} -> {summary['last_logged_loss']})"
    )
    return 0


def _cmd_validate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spectrum-tune validate")
    parser.add_argument("data", nargs="+", help="data files (.jsonl/.json/.parquet)")
    parser.add_argument("--model", help="tokenizer to check token lengths with")
    parser.add_argument("--max_length", type=int, default=1024)
    args = parser.parse_args(argv)
    from .data import load_multiref, tokenize_group

    dataset = load_multiref(args.data)
    counts = [len(refs) for refs in dataset["references"]]
    if args.model:
        from .models import load_tokenizer

        tokenizer = load_tokenizer(args.model)
        for row in dataset:
            tokenize_group(row, tokenizer, args.max_length)
    print(
        f"ok: {len(dataset)} groups, {sum(counts)} references "
        f"({sum(c > 1 for c in counts)} multi-reference groups)"
    )
    return 0


def _cmd_tiny_model(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spectrum-tune tiny-model")
    parser.add_argument("--out", help="build into this directory instead of the cache")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .tiny import TinyConfig, build_tiny_model, tiny_model_path

    config = TinyConfig(seed=args.seed)
    path = build_tiny_model(args.out, config) if args.out else tiny_model_path(config)
    print(path)
    return 0


def _cmd_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="spectrum-tune demo",
        description="Tune a base model several ways from the same prompts (tiny: sft, gem, iid, spectrum; "
        "smollm2: sft, spectrum) and evaluate base and arms on held-out tasks.",
    )
    parser.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    parser.add_argument("--seeds", type=int, help="seeds per arm (default 3; 1 for smollm2)")
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer steps and samples")
    parser.add_argument("--steps", type=int, help="override every arm's max_steps")
    parser.add_argument("--samples", type=int, help="samples per prompt in sample mode (smollm2: 30)")
    parser.add_argument("--model", default="tiny", choices=["tiny", "smollm2"],
                        help="tiny (default) or SmolLM2-135M-Instruct (offline GGUF; sft and spectrum arms)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--recipes", default=None, help="folder with tiny-{sft,iid,spectrum}.yaml")
    args = parser.parse_args(argv)
    from .demo import DemoOptions, run_demo

    options = DemoOptions(out=args.out, seeds=args.seeds, quick=args.quick, steps=args.steps,
                          samples=args.samples, workers=args.workers, model=args.model)
    if args.recipes:
        options.recipes_dir = Path(args.recipes)
    report = run_demo(options)
    passed = sum(effect["status"] == "PASS" for effect in report["effects"])
    print(f"wrote {options.out / 'report.md'} ({report['timings_seconds']['total']} s); "
          f"expected effects met: {passed}/{len(report['effects'])}")
    for effect in report["effects"]:
        print(f"  {effect['status']:4s} {effect['effect']}: {effect['detail']}")
    return 0


def _lazy(module: str, function: str) -> Callable[[list[str]], int]:
    """A command implemented in another module, imported only when it runs (keeps start-up fast)."""

    def run(argv: list[str]) -> int:
        return getattr(importlib.import_module(module, __package__), function)(argv)

    return run


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": _cmd_train,
    "demo": _cmd_demo,
    "validate": _cmd_validate,
    "tiny-model": _cmd_tiny_model,
    "eval": _lazy(".harness.cli", "cmd_eval"),
    "compare": _lazy(".harness.cli", "cmd_compare"),
    "push": _lazy(".hub", "cmd_push"),
    "data-report": _lazy(".datareport", "cmd_data_report"),
    "models": _lazy(".offline_models", "cmd_models"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0
    if argv[0] in {"-V", "--version"}:
        print(f"spectrum-tune {__version__}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"error: unknown command '{argv[0]}'\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return command(argv[1:])
    except SpectrumError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
