"""``spectrum-tune data-report``: the diversity report of a training set."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.data_report import DataReportOptions, run_data_report
from ..errors import SpectrumError
from .parser import CommandParser

DATA_REPORT_USAGE = (
    "spectrum-tune data-report DATA [DATA ...] [--text-field F] [--model PATH] [--select N] [--seed S] "
    "[--vendi-sample N] [--grad-sample N] [--grad-dim D] [--clusters K] [--near-dup-threshold T] --out DIR"
)


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="spectrum-tune data-report",
        usage=DATA_REPORT_USAGE,
        description="Diversity report of a training set: references per row, target entropy, "
        "(near-)duplicates, text Vendi, and with --model gradient G-Vendi and clusters; "
        "--select N writes a diverse subset.",
    )
    add = parser.add_argument
    add("data", nargs="+", help="data files (.jsonl/.json/.parquet) or a Hub dataset name")
    add("--text-field", "--text_field", dest="text_field", help="plain-text rows: the field holding the text")
    add("--model", help="proxy model for gradient features (a directory, Hub id or spectrum-tune/tiny)")
    add("--select", type=int, help="write DIR/selected.jsonl with this many diverse rows")
    add("--seed", type=int, default=0)
    add(
        "--vendi-sample",
        "--vendi_sample",
        dest="vendi_sample",
        type=int,
        default=1000,
        help="rows in the text-Vendi subsample (default 1000)",
    )
    add(
        "--grad-sample",
        "--grad_sample",
        dest="grad_sample",
        type=int,
        default=512,
        help="rows whose gradients are computed (default 512)",
    )
    add("--grad-dim", "--grad_dim", dest="grad_dim", type=int, default=256, help="projection dimension")
    add("--lora-rank", "--lora_rank", dest="lora_rank", type=int, default=8, help="rank of the gradient LoRA")
    add("--clusters", type=int, default=8, help="k of the gradient k-means (default 8)")
    add("--near-dup-threshold", "--near_dup_threshold", dest="near_dup_threshold", type=float, default=0.9)
    add(
        "--exact-limit",
        "--exact_limit",
        dest="exact_limit",
        type=int,
        default=5000,
        help="up to this many distinct rows compare all pairs; above, MinHash-LSH candidates",
    )
    add("--max-length", "--max_length", dest="max_length", type=int, default=512)
    add("--batch-size", "--batch_size", dest="batch_size", type=int, default=16)
    add("--no-progress", "--no_progress", dest="no_progress", action="store_true")
    add("--out", required=True, type=Path)
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``spectrum-tune data-report``."""
    args = _parser().parse_args(argv)
    for name in ("select", "vendi_sample", "grad_sample", "grad_dim", "lora_rank", "clusters"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SpectrumError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not 0 < args.near_dup_threshold <= 1:
        raise SpectrumError(f"--near-dup-threshold must be in (0, 1], got {args.near_dup_threshold}")
    options = DataReportOptions(
        data=args.data,
        out=args.out,
        text_field=args.text_field,
        model=args.model,
        select=args.select,
        seed=args.seed,
        vendi_sample=args.vendi_sample,
        grad_sample=args.grad_sample,
        grad_dim=args.grad_dim,
        lora_rank=args.lora_rank,
        clusters=args.clusters,
        near_dup_threshold=args.near_dup_threshold,
        exact_limit=args.exact_limit,
        max_length=args.max_length,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    report = run_data_report(options)
    dup = report["duplicates"]
    line = (
        f"wrote {args.out / 'report.md'}: {report['rows']} rows, exact/near duplicates "
        f"{dup['exact_rate']:.3f}/{dup['near_rate']:.3f}, text Vendi {report['text_vendi']['vendi']:.2f}"
    )
    if "gradient" in report:
        line += f", G-Vendi {report['gradient']['g_vendi']:.2f}"
    print(line + f" ({report['wall_seconds']['total']:.1f} s)")
    return 0
