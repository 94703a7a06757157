"""A reward function that records what each process is given, for tests/rl/test_grpo_distributed.py.

Named in a recipe as ``tests.rl.grpo_recorder.record`` (run from the repository root); appends one
line per call, ``{"prompts": [...], "completions": [...]}``, to ``$SPECTRUM_TEST_RECORD/rank<r>.jsonl``
and scores nothing (``None``: TRL leaves it out of the summed reward).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
    path = Path(os.environ["SPECTRUM_TEST_RECORD"], f"rank{os.environ.get('RANK', '0')}.jsonl")
    with path.open("a") as handle:
        handle.write(json.dumps({"prompts": prompts, "completions": completions}) + "\n")
    return [None] * len(completions)
