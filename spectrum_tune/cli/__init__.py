"""The ``spectrum-tune`` command: one small module per subcommand, imported only when it runs.

Each module in this package has ``main(argv) -> int``; :data:`COMMANDS` maps names to them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from .. import __version__
from ..errors import Interrupted, SpectrumError

USAGE = """spectrum-tune <command> [options]

commands:
  train       fine-tune with a recipe: --config recipes/tiny-spectrum.yaml [--key value ...]
  validate    check a data file (and, with --model, token lengths) without training
  tiny-model  print the shipped tiny offline model's path; --rebuild pretrains it afresh
  models      real models usable offline: fetch|path smollm2 (SmolLM2-135M-Instruct GGUF)
  demo        the end-to-end demo: --out runs/demo [--seeds 3] [--quick] [--model tiny|smollm2] [--stage rl]
  eval        score accuracy and spread: --model M --tasks spread ... [--mode sample|score|both] --out DIR
  compare     side-by-side table and charts of eval runs: DIR_A DIR_B ... [--labels a b ...] --out DIR
  data-report diversity of a training set: DATA [--model M] [--select N] [--text-field F] --out DIR
  data-build  multi-reference rows from prompts and teachers: PROMPTS --teacher M [--teacher M2] --out DIR
  push        share a run on the Hub: RUN_DIR --repo-id OWNER/NAME [--eval DIR] [--private] [--dry-run]
  grpo        GRPO with spread-keeping rewards: --config recipes/tiny-grpo-diversity.yaml [--key value ...]
  dpo         DPO on preference pairs: --config recipes/tiny-dpo.yaml [--key value ...]
  divpo-pairs DivPO pairs from sampled pools: DATA --out PAIRS.jsonl [--model M --samples 16] [--threshold T]
"""


COMMANDS: dict[str, str] = {
    "train": "train",
    "demo": "demo",
    "validate": "validate",
    "tiny-model": "tiny_model",
    "eval": "eval",
    "compare": "compare",
    "push": "push",
    "data-report": "data_report",
    "data-build": "data_build",
    "models": "models",
    "grpo": "grpo",
    "dpo": "dpo",
    "divpo-pairs": "divpo_pairs",
}
"""Command name -> module of this package (``spectrum_tune.cli.<module>.main``)."""


def _command(name: str) -> Callable[[list[str]], int]:
    return importlib.import_module(f".{COMMANDS[name]}", __name__).main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0
    if argv[0] in {"-V", "--version"}:
        print(f"spectrum-tune {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        message = f"error: unknown command '{argv[0]}' (commands: {known}; see `spectrum-tune --help`)"
        print(message, file=sys.stderr)
        return 2
    try:
        return _command(argv[0])(argv[1:])
    except Interrupted as error:  # stopped by a signal, resumable: no "error:", the signal's exit status
        if error.show:
            print(str(error), file=sys.stderr)
        return error.exit_code
    except SpectrumError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
