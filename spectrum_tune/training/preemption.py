"""Runs that survive preemption: stop at a step boundary with a complete checkpoint, resume from it.

Three pieces, mixed into a transformers ``Trainer`` by :class:`PreemptibleTrainer` (SpectrumTrainer
has it; the ``grpo`` / ``dpo`` commands use :func:`preemptible` on TRL's trainers):

- **stop on a signal**: while ``train()`` runs, SIGTERM or SIGINT only sets a flag (when the
  process still has the default handler for it). At the end of every optimizer step the ranks
  agree on it with one all-reduce, so a signal seen by one rank stops all of them at the same
  step (none waits in a collective the others skipped). The trainer then logs, writes a complete
  checkpoint and ``train()`` raises :class:`~spectrum_tune.errors.Interrupted`, whose one line
  names the checkpoint and the resume flag. A repeated signal is ignored (a launcher forwards the
  terminal's Ctrl-C a second time); SIGKILL still stops at once and loses only the steps since
  the last checkpoint.
- **atomic checkpoints**: a checkpoint is written under ``<output_dir>/.incomplete-checkpoint-N/``
  and renamed to ``checkpoint-N`` once every rank has written its part, so a ``checkpoint-N``
  directory is always whole; a save killed halfway leaves only the hidden directory, which the
  next run removes.
- **resume**: ``resume_from_checkpoint`` true (or ``"true"`` / ``"latest"`` from the command line)
  takes the last *complete* checkpoint; a path to an incomplete one is a one-line error naming
  the last complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from ..errors import Interrupted, SpectrumError

__all__ = [
    "STAGING_PREFIX",
    "PreemptibleTrainer",
    "StopRequest",
    "checkpoint_problem",
    "complete_checkpoints",
    "preemptible",
    "resolve_resume",
]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STAGING_PREFIX = ".incomplete-"  # <output_dir>/.incomplete-checkpoint-N/checkpoint-N while it is written
TRAINER_STATE = "trainer_state.json"
# What transformers' _load_from_checkpoint accepts as model weights (plus FSDP / DeepSpeed forms below).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)
_TRUE = {"true", "latest", "yes", "1"}
_FALSE = {"", "false", "no", "0", "none"}


def _say(line: str) -> None:
    """One line to stderr from a signal handler: straight to the descriptor, since print() would
    raise if the handler interrupted another write to sys.stderr (a progress bar's)."""
    with contextlib.suppress(OSError):
        os.write(2, f"{line}\n".encode())


class StopRequest:
    """The stop signal a process received, and the one its ranks agreed on at a step end."""

    def __init__(self) -> None:
        self.received: int | None = None  # this process's first signal
        self.agreed: int | None = None  # the signal every rank stops for (set at a step end)
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Catch SIGTERM/SIGINT where the process has the default handlers (not in threads)."""
        self.received = self.agreed = None
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            current = signal.getsignal(signum)
            # An application that installed its own handler keeps it.
            if current in (signal.SIG_DFL, signal.default_int_handler):
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = signum
            _say(
                f"received {name}: finishing this optimizer step, then saving a checkpoint and stopping "
                "(SIGKILL stops at once and loses the steps since the last checkpoint)"
            )
        else:
            _say(f"received {name} again: already stopping after this step")

    def agree(self, device: Any) -> int | None:
        """The largest signal number any rank received (0: none); one all-reduce when distributed."""
        import torch
        import torch.distributed as dist

        value = self.received or 0
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            flag = torch.tensor([value], dtype=torch.int64, device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            value = int(flag.item())
        self.agreed = value or None
        return self.agreed


class _StopAtStepEnd(TrainerCallback):
    """Asks the trainer to log, save and stop once the ranks agree a stop signal arrived."""

    def __init__(self, request: StopRequest):
        self.request = request

    def on_step_end(self, args, state, control, **kwargs):
        if self.request.agree(args.device):
            control.should_log = control.should_save = control.should_training_stop = True
        return control


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a complete checkpoint to resume from, or None when it is one."""
    path = Path(path)
    if not path.is_dir():
        return "it does not exist" if not path.exists() else "it is not a directory"
    if path.parent.name.startswith(STAGING_PREFIX) or path.name.startswith(STAGING_PREFIX):
        return "its save never finished (it was written aside and not yet renamed)"
    state = path / TRAINER_STATE
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"its {TRAINER_STATE} is missing or unreadable (the save was cut short)"
    names = [entry.name for entry in path.iterdir()]
    weights = any(name in WEIGHT_FILES for name in names)
    # FSDP's sharded or full state dict, a DeepSpeed checkpoint
    weights |= any(name.startswith(("pytorch_model_fsdp", "global_step")) for name in names)
    weights |= any((path / name / "adapter_config.json").is_file() for name in names)  # several adapters
    return None if weights else "it holds no model weights (the save was cut short)"


def _step(path: Path) -> int | None:
    prefix = f"{PREFIX_CHECKPOINT_DIR}-"
    suffix = path.name[len(prefix) :]
    return int(suffix) if path.name.startswith(prefix) and suffix.isdigit() else None


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete ``checkpoint-N`` directories in ``output_dir``, by step (oldest first)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [
        path for path in folder.iterdir() if _step(path) is not None and checkpoint_problem(path) is None
    ]
    return sorted(found, key=_step)


def _last_complete_hint(output_dir: Path) -> str:
    complete = complete_checkpoints(output_dir)
    if not complete:
        return f"there is no complete checkpoint in '{output_dir}' (start without --resume_from_checkpoint)"
    return f"the last complete one is '{complete[-1]}' (--resume_from_checkpoint {complete[-1]}, or true)"


def resolve_resume(value: Any, output_dir: str | Path) -> str | None:
    """The checkpoint directory to resume from, or None to start fresh.

    ``value`` is ``resume_from_checkpoint`` as given: None / False / ``"false"`` start fresh;
    True / ``"true"`` / ``"latest"`` take the last complete checkpoint in ``output_dir``; anything
    else is a path, which must be a complete checkpoint. Each refusal is one line naming the last
    complete checkpoint.
    """
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in _FALSE):
        return None
    output_dir = Path(output_dir)
    if value is True or (isinstance(value, str) and value.strip().lower() in _TRUE):
        complete = complete_checkpoints(output_dir)
        if not complete:
            raise SpectrumError(f"--resume_from_checkpoint true: {_last_complete_hint(output_dir)}")
        return str(complete[-1])
    path = Path(value)
    problem = checkpoint_problem(path)
    if problem is None:
        return str(path)
    # where to look for a good one: the run directory that holds the named checkpoint
    run_dir = path.parent.parent if path.parent.name.startswith(STAGING_PREFIX) else path.parent
    raise SpectrumError(f"cannot resume from checkpoint '{value}': {problem}; {_last_complete_hint(run_dir)}")


def _remove_stale_staging(run_dir: str) -> None:
    folder = Path(run_dir)
    if folder.is_dir():
        for path in folder.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)


def _publish(staged: Path, final: Path) -> None:
    """Rename the finished checkpoint into place (replacing one of the same step, as Trainer does)."""
    old = None
    if final.exists():  # a resumed run reaching a step saved before: swap, never merge
        old = final.with_name(f"{STAGING_PREFIX}old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staged, final)
    staged.parent.rmdir()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class PreemptibleTrainer:
    """Mixin for a transformers ``Trainer``: signal-safe ``train()``, atomic checkpoints, resume from
    the last complete checkpoint (see the module docstring). Put it before the Trainer class."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._stop_request = StopRequest()
        self._staging_run_dir: str | None = None
        self.add_callback(_StopAtStepEnd(self._stop_request))

    def train(
        self,
        resume_from_checkpoint: Any = None,
        trial: Any = None,
        ignore_keys_for_eval: Any = None,
        **kwargs: Any,
    ) -> Any:
        checkpoint = resolve_resume(resume_from_checkpoint, self.args.output_dir)
        if self.args.should_save:
            _remove_stale_staging(self.args.output_dir)
        self._stop_request.install()
        try:
            result = super().train(
                resume_from_checkpoint=checkpoint,
                trial=trial,
                ignore_keys_for_eval=ignore_keys_for_eval,
                **kwargs,
            )
        finally:
            self._stop_request.restore()
        signum = self._stop_request.agreed
        if signum and self.state.global_step < self.state.max_steps:
            saved = Path(self._get_output_dir(trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            raise Interrupted(
                f"stopped by {signal.Signals(signum).name} after step {self.state.global_step} of "
                f"{self.state.max_steps}; checkpoint '{saved}' is complete: resume with the same command and "
                f"--resume_from_checkpoint true (or train(resume_from_checkpoint=True))",
                signum,
                show=self.is_world_process_zero(),
            )
        return result

    def _get_output_dir(self, trial: Any) -> str:
        # While a checkpoint is being written, Trainer writes it (and rotates) in the staging folder.
        return self._staging_run_dir or super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        run_dir = super()._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = os.path.join(run_dir, f"{STAGING_PREFIX}{name}")
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)  # left by a save that was killed
        self.accelerator.wait_for_everyone()
        self._staging_run_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_run_dir = None
        self.accelerator.wait_for_everyone()  # every rank's part (RNG state, shards) is written
        if self.args.should_save:
            staged, final = Path(staging) / name, Path(run_dir) / name
            best = self.state.best_model_checkpoint
            if best is not None and Path(best).parent == Path(staging):
                # Trainer recorded the best checkpoint under the staging folder: name its real place.
                self.state.best_model_checkpoint = str(Path(run_dir) / Path(best).name)
                self.state.save_to_json(str(staged / TRAINER_STATE))
            _publish(staged, final)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()


def preemptible(trainer_class: type) -> type:
    """``trainer_class`` with :class:`PreemptibleTrainer` mixed in (e.g. ``preemptible(GRPOTrainer)``)."""
    if issubclass(trainer_class, PreemptibleTrainer):
        return trainer_class
    return type(trainer_class.__name__, (PreemptibleTrainer, trainer_class), {"__module__": __name__})
