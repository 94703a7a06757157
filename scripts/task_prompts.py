"""Write the prompts of eval task files as ``data-build`` input rows (prompt + known valid set).

Used to choose ``data-build`` settings on the real data's *tuned* split (never the held-out one):
the rows keep each item's references as the known valid set, which ``data-build`` only measures
(``report.md``: built references in the known valid set) unless ``--valid-set-filters`` is given.

    python scripts/task_prompts.py --tasks eval/real/chat --split tuned --out runs/tuned-prompts.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spectrum_tune.evaluation.tasks import resolve_tasks
from spectrum_tune.io import write_text_atomic


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", required=True, help="Task files, folders or suite names.")
    parser.add_argument("--split", default="all", help="Only tasks of this split (all: every task).")
    parser.add_argument("--out", type=Path, required=True, help="The .jsonl file to write.")
    args = parser.parse_args(argv)
    rows = [
        {"prompt": item.prompt, "references": item.references}
        for task in resolve_tasks(args.tasks, split=args.split)
        for item in task.items
        if item.prompt is not None and item.references
    ]
    write_text_atomic(args.out, "".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {args.out}: {len(rows)} prompts")


if __name__ == "__main__":
    main()
