"""Sharing a run on the Hugging Face Hub: the run directory's allow-lists (:mod:`.run_dir`), the
model card (:mod:`.card`), the staged folder scanned for tokens and local paths (:mod:`.staging`),
and the idempotent upload (:mod:`.upload`). Reads run directories and eval results; nothing below
it imports this room.
"""

from .card import build_card, eval_results, flatten_metrics
from .staging import default_staging_dir, stage_upload
from .upload import push_run, push_trained_run

__all__ = [
    "build_card",
    "default_staging_dir",
    "eval_results",
    "flatten_metrics",
    "push_run",
    "push_trained_run",
    "stage_upload",
]
