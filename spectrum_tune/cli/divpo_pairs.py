"""``spectrum-tune divpo-pairs DATA --out PAIRS.jsonl``: DivPO (or ordinary) preference pairs."""

from __future__ import annotations

from .parser import CommandParser


def main(argv: list[str]) -> int:
    parser = CommandParser(
        prog="spectrum-tune divpo-pairs",
        description="Build a DPO dataset from pools of sampled responses: chosen = the most diverse response "
        "of quality >= threshold, rejected = the least diverse below it (DivPO). DATA rows carry 'responses' "
        "(and optionally 'scores'), or give --model to sample --samples responses per prompt row.",
    )
    parser.add_argument("data", help="JSONL/JSON/Parquet rows, or an eval task YAML (prompts to sample)")
    parser.add_argument("--out", required=True, help="output JSONL of {prompt, chosen, rejected}")
    parser.add_argument("--model", help="sample the pools with this model (path, Hub id or alias)")
    parser.add_argument("--adapter", help="PEFT adapter on top of --model")
    parser.add_argument("--samples", type=int, default=16, help="responses per prompt when sampling (16)")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--threshold", type=float, default=None, help="quality threshold (default 0.5)")
    split.add_argument("--top-fraction", type=float, help="split each pool by rank instead (0 < f <= 0.5)")
    parser.add_argument(
        "--quality",
        default="validity",
        help="quality when rows have no 'scores': validity, popularity or a dotted import path",
    )
    parser.add_argument(
        "--equivalence",
        default="normalized",
        help="normalized, exact, novelty, or a pair-classifier model path",
    )
    parser.add_argument(
        "--ordinary",
        action="store_true",
        help="ordinary pairs instead (chosen = best quality, rejected = worst)",
    )
    args = parser.parse_args(argv)

    from ..rl.divpo import build_pairs_file

    report = build_pairs_file(
        args.data,
        args.out,
        model=args.model,
        adapter=args.adapter,
        samples=args.samples,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        quality=args.quality,
        threshold=args.threshold if args.threshold is not None or args.top_fraction else 0.5,
        top_fraction=args.top_fraction,
        equivalence=args.equivalence,
        ordinary=args.ordinary,
    )
    print(
        f"wrote {report['pairs']} pairs from {report['prompts']} prompts to {args.out} "
        f"({report['prompts'] - report['pairs']} prompts gave no pair)"
    )
    return 0
