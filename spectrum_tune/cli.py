"""The ``spectrum-tune`` command: train, tiny-model, validate (eval/compare/demo join later)."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import SpectrumError

USAGE = """spectrum-tune <command> [options]

commands:
  train       fine-tune with a recipe: --config recipes/tiny-spectrum.yaml [--key value ...]
  validate    check a data file (and, with --model, token lengths) without training
  tiny-model  build (or find in the cache) the tiny offline model and print its path
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


COMMANDS = {"train": _cmd_train, "validate": _cmd_validate, "tiny-model": _cmd_tiny_model}


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
