"""What reaches the user's terminal: the one exception family the CLI turns into a single
``error: ...`` line (no traceback), and the filters that keep a normal run free of library noise.

The filters drop only messages the toolkit itself provokes on every run without anything being
wrong for the user (each entry says why it is safe); a user's own deprecated setting or a real
problem still reaches the terminal. Stdlib only: this module sits at the bottom.
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["Interrupted", "SpectrumError", "quiet_library_noise"]


class SpectrumError(Exception):
    """A problem with the user's input (data, recipe, model path, output dir, Hub)."""


class Interrupted(SpectrumError):
    """A run stopped by a signal (SIGTERM, SIGINT) after leaving its work resumable; the CLI prints
    the message (where ``show``: one rank of a multi-process run says it) and exits with
    ``128 + signum``, the status a shell reports for a process the signal ended."""

    def __init__(self, message: str, signum: int, *, show: bool = True):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.show = show


# (logger name, message fragment): log records dropped from that library logger.
LOG_NOISE = (
    # bitsandbytes tries a Hub kernel for 4-bit CPU matmuls on import and logs its failure offline;
    # it then uses its own CPU kernel, which is what runs here anyway.
    ("bitsandbytes.backends.cpu.ops", "kernels-community"),
)
# (message regex, category): warnings ignored.
WARNING_NOISE = (
    # PEFT checks the base model's config.json on save to tell whether embeddings grew; a GGUF
    # directory has none (and the Hub is unreachable offline). LoRA here never resizes embeddings.
    (r"Could not find a config file in .* will assume that the vocabulary was not modified", UserWarning),
    # PEFT reads model.is_gradient_checkpointing when it wraps a model, which transformers 5 renamed;
    # the deprecation is PEFT's to fix, nothing a user of this toolkit set.
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
)
_installed = False


class _DropMessages(logging.Filter):
    def __init__(self, fragment: str):
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def quiet_library_noise() -> None:
    """Install the filters once (idempotent); ``import spectrum_tune`` does."""
    global _installed
    if _installed:
        return
    for name, fragment in LOG_NOISE:
        logging.getLogger(name).addFilter(_DropMessages(fragment))
    for message, category in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    _installed = True
