"""``spectrum-tune dpo --config RECIPE [--key value ...]``: DPO on a preference-pair file."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from ..rl.recipe import dpo_parser, parse_dpo_args
    from ..rl.train import run_dpo

    if not argv or argv[0] in {"-h", "--help"}:
        dpo_parser().print_help()
        return 0
    summary = run_dpo(*parse_dpo_args(argv))
    print(
        f"trained {summary['global_steps']} DPO steps on {summary['rows']} pairs "
        f"in {summary['wall_seconds']} s "
        f"(loss {summary['first_logged_loss']} -> {summary['last_logged_loss']})"
    )
    return 0
