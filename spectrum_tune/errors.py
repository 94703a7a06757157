"""The one exception family the CLI turns into a single ``error: ...`` line (no traceback)."""


class SpectrumError(Exception):
    """A problem with the user's input (data, recipe, model path, output dir, Hub)."""
