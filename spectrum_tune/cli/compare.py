"""``spectrum-tune compare``: eval runs side by side, with cross-model homogeneity."""

from __future__ import annotations

from pathlib import Path

from .parser import CommandParser


def main(argv: list[str]) -> int:
    """Compare two or more eval runs side by side (deltas vs the first)."""
    from ..analysis.compare import compare_runs

    parser = CommandParser(
        prog="spectrum-tune compare", description="Side-by-side table and charts of eval runs."
    )
    parser.add_argument("runs", nargs="+", help="eval output directories (the first is the baseline)")
    parser.add_argument("--labels", nargs="+", help="one name per run (default: directory names)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    payload = compare_runs(args.runs, args.out, args.labels)
    print(f"wrote {args.out / 'report.md'} ({len(payload['metrics'])} metrics, {len(args.runs)} runs)")
    summary = payload["homogeneity"]["summary"]
    if summary.get("homogeneity") is not None:
        print(
            f"cross-model homogeneity {summary['homogeneity']:.3f} (1 - JS/ln 2), top-1 agreement "
            f"{summary['top1']:.3f} over {len(payload['homogeneity']['tasks'])} shared open task(s)"
        )
    return 0
