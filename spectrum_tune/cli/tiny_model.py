"""``spectrum-tune tiny-model``: build (or find in the cache) the tiny offline model."""

from __future__ import annotations

from .parser import CommandParser


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="spectrum-tune tiny-model")
    parser.add_argument("--out", help="build into this directory instead of the cache")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from ..world import TinyConfig, build_tiny_model, tiny_model_path

    config = TinyConfig(seed=args.seed)
    path = build_tiny_model(args.out, config) if args.out else tiny_model_path(config)
    print(path)
    return 0
