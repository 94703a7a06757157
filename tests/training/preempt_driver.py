"""``python preempt_driver.py <spectrum-tune args>``: the CLI with one pause, for the preemption tests.

The tests must signal a run at a known point, inside an optimizer step or inside a checkpoint save,
and the training is far too fast to hit those by timing. This driver (test-side only) wraps two
Trainer methods: with ``PREEMPT_AT=step:N`` the run pauses in the forward/backward of step N, with
``PREEMPT_AT=save:N`` in the save of ``checkpoint-N`` after the model weights are written and before
the optimizer state and trainer state. At the pause it writes the file ``PREEMPT_MARKER`` and sleeps
``PREEMPT_SLEEP`` seconds (default 5), long enough for the test to send its signal; with
``PREEMPT_SELF=1`` the process sends itself SIGTERM there instead (only the rank ``PREEMPT_RANK``
when several processes run).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from transformers import Trainer


def _pause(where: str) -> None:
    if os.environ.get("PREEMPT_AT") != where:
        return
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("PREEMPT_SELF") == "1":
        if rank == int(os.environ.get("PREEMPT_RANK", "0")):
            os.kill(os.getpid(), signal.SIGTERM)
        return
    if rank == 0:
        Path(os.environ["PREEMPT_MARKER"]).write_text(where)
    time.sleep(float(os.environ.get("PREEMPT_SLEEP", "5")))


_training_step = Trainer.training_step
_save_optimizer = Trainer._save_optimizer_and_scheduler


def training_step(self, *args, **kwargs):
    _pause(f"step:{self.state.global_step + 1}")
    return _training_step(self, *args, **kwargs)


def save_optimizer(self, output_dir):
    _pause(f"save:{self.state.global_step}")
    return _save_optimizer(self, output_dir)


Trainer.training_step = training_step
Trainer._save_optimizer_and_scheduler = save_optimizer

if __name__ == "__main__":
    from spectrum_tune.cli import main

    sys.exit(main(sys.argv[1:]))
