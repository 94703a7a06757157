"""``spectrum-tune data-build``: multi-reference rows from prompts and teachers.

The options are :class:`~spectrum_tune.data_build.DataBuildConfig`'s fields (help text included),
so the command and the Python function take the same settings.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..data_build import DataBuildConfig, TeacherSpec, build_data
from ..errors import SpectrumError
from .parser import CommandParser

USAGE = (
    "spectrum-tune data-build DATA --teacher MODEL[,prompting=chat|plain][,adapter=DIR][,name=L] "
    "[--teacher ...] --out DIR [--samples N] [--extract MODE] [--validator YAML] [--judge MODEL] "
    "[--agreement] [--weights counts|teacher|uniform] [--temper T] [--max-k K] ..."
)
_SPECIAL = {"data", "out", "teachers", "judge", "stop", "validator", "progress"}


def _validator(text: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpectrumError(f"--validator is not YAML/JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise SpectrumError("--validator must be a mapping, e.g. '{int_range: {min: 1, max: 10}}'")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="spectrum-tune data-build",
        usage=USAGE,
        description="Multi-reference rows from prompts (or one-answer SFT rows) and "
        "one or more teachers; see docs/data.md.",
    )
    helps = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(DataBuildConfig)}
    add = parser.add_argument
    add(
        "data",
        help=helps["data"] + " Or public:NAME (globalopinionqa, coin, urn, poisson, zipf, uniform, "
        "synthetic): public distributions, no teacher.",
    )
    add("--out", required=True, type=Path, help=helps["out"])
    add(
        "--teacher",
        dest="teachers",
        action="append",
        default=[],
        type=TeacherSpec.parse,
        help="MODEL[,prompting=chat|plain|auto][,adapter=DIR][,gguf=FILE][,name=LABEL]; repeat for several",
    )
    add("--judge", type=TeacherSpec.parse, help=helps["judge"] + " (same syntax as --teacher)")
    add(
        "--stop",
        action="append",
        help=helps["stop"] + " Repeat for several (default: a newline; --stop '' for none).",
    )
    add(
        "--validator",
        type=_validator,
        help=helps["validator"] + " As YAML, e.g. '{int_range: {min: 1, max: 9}}'.",
    )
    add("--no-progress", "--no_progress", dest="progress", action="store_false", help="No progress bars.")
    for field in dataclasses.fields(DataBuildConfig):
        if field.name in _SPECIAL:
            continue
        flags = [f"--{field.name.replace('_', '-')}"] + ([f"--{field.name}"] if "_" in field.name else [])
        default = field.default
        if isinstance(default, bool):
            add(*flags, dest=field.name, action="store_true", help=field.metadata["help"])
        else:
            kind = {
                "max_k": int,
                "select": int,
                "select_batch": int,
                "public_rows": int,
                "classifier_threshold": float,
            }.get(field.name, type(default))
            kind = str if kind is type(None) else kind
            add(
                *flags,
                dest=field.name,
                type=kind,
                default=default,
                help=f"{field.metadata['help']} (default: {default})",
            )
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``spectrum-tune data-build``."""
    args = vars(_parser().parse_args(argv))
    if args["stop"] is None:
        args.pop("stop")
    else:  # --stop '' alone: no stop strings (free text up to the end-of-turn)
        args["stop"] = [stop for stop in args["stop"] if stop]
    summary = build_data(DataBuildConfig(**args))
    out = args["out"]
    line = (
        f"wrote {out / 'rows.jsonl'}: {summary['rows']} rows from {summary['prompts']} prompts, "
        f"{summary['references_mean']:.2f} references per row, {summary['rejected_answers']} rejected "
        "answers "
        f"(see {out / 'report.md'}; {summary['wall_seconds']:.1f} s)"
    )
    print(line)
    if not summary["rows"]:
        print("error: no prompt kept an answer; nothing to train on (see rejected.jsonl)")
        return 1
    return 0
