"""The argument parser every command uses: a bad flag is one error line, not a usage dump."""

from __future__ import annotations

import argparse

from ..errors import SpectrumError

__all__ = ["CommandParser"]


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose complaints raise :class:`SpectrumError`.

    ``spectrum-tune`` prints a SpectrumError as one ``error: ...`` line (exit status 2); argparse
    would print the whole usage first. ``--help`` still prints the full help.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SpectrumError(f"{self.prog}: {message} (see `{self.prog} --help`)")
