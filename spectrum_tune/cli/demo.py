"""``spectrum-tune demo``: tune several arms from one base and evaluate them on held-out tasks."""

from __future__ import annotations

import argparse
from pathlib import Path

from .parser import CommandParser


def main(argv: list[str]) -> int:
    parser = CommandParser(
        prog="spectrum-tune demo",
        description="Tune a base model several ways from the same prompts (tiny: sft, gem, iid, spectrum; "
        "smollm2: sft, spectrum) and evaluate base and arms on held-out tasks.",
    )
    parser.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    parser.add_argument("--seeds", type=int, help="seeds per arm (default 3; 1 for smollm2)")
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer steps and samples")
    parser.add_argument("--steps", type=int, help="override every arm's max_steps")
    parser.add_argument("--samples", type=int, help="samples per prompt in sample mode (smollm2: 30)")
    parser.add_argument(
        "--model",
        default="tiny",
        choices=["tiny", "smollm2", "smollm2-real", "gemma3-270m-real"],
        help="tiny (default), SmolLM2-135M-Instruct (offline GGUF; sft and spectrum arms), "
        "or a real-data run with an alpha/beta sweep (docs/real-models.md)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="real-model runs: keep arms and evaluations already written in --out",
    )
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--recipes", default=None, help="folder with tiny-{sft,iid,spectrum}.yaml")
    parser.add_argument(
        "--stage",
        default="sft",
        choices=["sft", "rl"],
        help="sft (default): the arms above; rl: GRPO and DPO arms from one spectrum start",
    )
    args = parser.parse_args(argv)
    if args.stage == "rl":
        return _rl_stage(args)
    from ..demo.run import DemoOptions, run_demo

    options = DemoOptions(
        out=args.out,
        seeds=args.seeds,
        quick=args.quick,
        steps=args.steps,
        samples=args.samples,
        workers=args.workers,
        model=args.model,
        reuse=args.reuse,
    )
    if args.recipes:
        options.recipes_dir = Path(args.recipes)
    return _print_effects(run_demo(options), options.out)


def _rl_stage(args: argparse.Namespace) -> int:
    from ..demo.rl import RlDemoOptions, run_rl_demo

    options = RlDemoOptions(
        out=args.out,
        seeds=args.seeds or (1 if args.quick else 3),
        steps=args.steps,
        samples=args.samples or (30 if args.quick else 50),
        workers=args.workers,
    )
    if args.recipes:
        options.recipes_dir = Path(args.recipes)
    return _print_effects(run_rl_demo(options), options.out)


def _print_effects(report: dict, out: Path) -> int:
    passed = sum(effect["status"] == "PASS" for effect in report["effects"])
    print(
        f"wrote {out / 'report.md'} ({report['timings_seconds']['total']} s); "
        f"expected effects met: {passed}/{len(report['effects'])}"
    )
    for effect in report["effects"]:
        print(f"  {effect['status']:4s} {effect['effect']}: {effect['detail']}")
    return 0
