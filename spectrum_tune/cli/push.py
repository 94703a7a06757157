"""``spectrum-tune push``: share a run on the Hub (or stage it with ``--dry-run``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SpectrumError
from ..hub.staging import list_files
from ..hub.upload import push_run
from .parser import CommandParser

PUSH_USAGE = (
    "spectrum-tune push RUN_DIR --repo-id OWNER/NAME [--private] [--revision BRANCH] "
    "[--commit-message MSG] [--eval DIR] [--merged] [--license ID] [--dry-run [--out DIR]]"
)


def _push_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="spectrum-tune push",
        usage=PUSH_USAGE,
        description="Upload a run's adapter, tokenizer, recipe and model card (with eval results) to the "
        "Hugging Face Hub. The token comes from HF_TOKEN or `hf auth login` and is never written or printed.",
    )
    parser.add_argument("run_dir", help="a run directory written by `spectrum-tune train`")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="OWNER/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private (if it is new)")
    parser.add_argument("--revision", help="branch to push to (created if missing; default main)")
    parser.add_argument("--commit-message", "--commit_message", dest="commit_message")
    parser.add_argument("--eval", dest="eval_dir", help="an eval output dir: results.json goes into the card")
    parser.add_argument("--merged", action="store_true", help="upload base + LoRA merged into a full model")
    parser.add_argument("--license", help="license id for the card (default: the base model's, if known)")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true", help="stage only")
    parser.add_argument("--out", help="with --dry-run: staging folder (default RUN_DIR/../NAME-hub-staging)")
    return parser


def main(argv: list[str]) -> int:
    """``spectrum-tune push``: upload a run, or with ``--dry-run`` stage it and list its files."""
    args = _push_parser().parse_args(argv)
    if args.out and not args.dry_run:
        raise SpectrumError("--out is only used with --dry-run")
    result = push_run(
        args.run_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        eval_dir=args.eval_dir,
        merged=args.merged,
        dry_run=args.dry_run,
        out_dir=args.out,
        license=args.license,
    )
    if args.dry_run:
        folder = Path(result)
        files = list_files(folder)
        print(f"dry run: staged {len(files)} files for {args.repo_id} in {folder} (nothing uploaded)")
        for name in files:
            print(f"  {name}  ({(folder / name).stat().st_size} bytes)")
    else:
        print(f"pushed {args.run_dir} to {args.repo_id}: {result}")
    return 0
