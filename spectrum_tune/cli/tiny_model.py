"""``spectrum-tune tiny-model``: print the tiny offline model's directory, or pretrain it afresh.

The default config's model ships with the package, so by default this only prints where it is.
``--rebuild`` pretrains it from the corpus (a few minutes on 2 cores) into ``--out`` or the cache
and says whether the weights came out bit-identical to the shipped ones: float results differ
across CPUs, which is why the shipped build exists.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .parser import CommandParser

WEIGHTS = "model.safetensors"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str]) -> int:
    parser = CommandParser(
        prog="spectrum-tune tiny-model",
        description="Print the tiny offline model's directory (shipped with the package for the default "
        "config), or pretrain it afresh with --rebuild.",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="pretrain the model from the corpus instead of using the shipped or cached one",
    )
    parser.add_argument("--out", help="build into this directory (implies --rebuild; default: the cache)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="corpus and pretraining seed (only seed 0 ships; others are built and cached)",
    )
    args = parser.parse_args(argv)
    from ..world import (
        TinyConfig,
        build_tiny_model,
        cache_root,
        config_key,
        shipped_tiny_model,
        tiny_model_path,
    )

    config = TinyConfig(seed=args.seed)
    if not (args.rebuild or args.out):
        print(tiny_model_path(config))
        return 0
    out = Path(args.out) if args.out else cache_root() / f"tiny-{config_key(config)}"
    path = build_tiny_model(out, config)
    print(path)
    shipped = shipped_tiny_model(config)
    if shipped is not None and shipped.resolve() != path.resolve():
        same = _sha256(path / WEIGHTS) == _sha256(shipped / WEIGHTS)
        print(f"weights {'identical to' if same else 'differ from'} the shipped build ({shipped / WEIGHTS})")
    return 0
