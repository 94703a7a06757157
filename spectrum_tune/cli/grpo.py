"""``spectrum-tune grpo --config RECIPE [--key value ...]``: GRPO with the spectrum rewards."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from ..rl.recipe import grpo_parser, parse_grpo_args
    from ..rl.train import run_grpo

    if not argv or argv[0] in {"-h", "--help"}:
        grpo_parser().print_help()
        return 0
    summary = run_grpo(*parse_grpo_args(argv))
    print(
        f"trained {summary['global_steps']} GRPO steps in {summary['wall_seconds']} s "
        f"(rewards {', '.join(summary['reward_funcs'])}; mean reward "
        f"{summary['first_logged_reward']} -> {summary['last_logged_reward']})"
    )
    return 0
