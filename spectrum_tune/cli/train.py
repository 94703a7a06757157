"""``spectrum-tune train --config RECIPE [--key value ...]``: fine-tune as the recipe says."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from ..training.recipe import _parser, parse_train_args
    from ..training.train import run_training

    if not argv or argv[0] in {"-h", "--help"}:
        _parser().print_help()
        return 0
    run_args, config, model_args = parse_train_args(argv)
    push, hub_token = config.push_to_hub, config.hub_token  # run_training keeps both out of its files
    summary = run_training(run_args, config, model_args)
    print(
        f"trained {summary['global_steps']} steps in {summary['wall_seconds']} s "
        f"(loss {summary['first_logged_loss']} -> {summary['last_logged_loss']})"
    )
    if push and summary["main_process"]:
        from ..hub import push_trained_run

        print(f"pushed to {push_trained_run(config.output_dir, config, hub_token)}")
    return 0
