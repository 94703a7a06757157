"""MkDocs hook: pages generated from the code at build time, so they cannot drift from it.

- ``<!-- spectrum-config-fields -->`` becomes the table of SpectrumConfig's own fields (beside
  every ``trl.SFTConfig`` field): name, type, default and the help text the field carries.
- ``<!-- cli-commands -->`` becomes one section per ``spectrum-tune`` command with its ``--help``.
- ``<!-- api-reference -->`` becomes one mkdocstrings block per public name of ``spectrum_tune``
  (its ``__all__``), so a name added there is documented without editing this site.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import warnings
from typing import Any

CONFIG_MARK = "<!-- spectrum-config-fields -->"
CLI_MARK = "<!-- cli-commands -->"
API_MARK = "<!-- api-reference -->"
MAX_HELP_LINES = 80


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def config_fields_table() -> str:
    """Markdown table of the fields SpectrumConfig adds to trl.SFTConfig, with their help text."""
    from trl import SFTConfig

    from spectrum_tune.training.config import SpectrumConfig

    inherited = {f.name for f in dataclasses.fields(SFTConfig)}
    rows = ["| field | type | default | help |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(SpectrumConfig):
        if f.name in inherited:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", f.type)
        help_text = _cell(f.metadata.get("help", ""))
        rows.append(f"| `{f.name}` | `{_cell(kind)}` | `{_cell(default)}` | {help_text} |")
    return "\n".join(rows)


def cli_reference() -> str:
    """Each command's ``--help``, from the commands the CLI registers."""
    from spectrum_tune.cli import COMMANDS, USAGE, _command

    parts = ["```text", USAGE.strip(), "```", ""]
    for name, module in COMMANDS.items():
        doc = (importlib.import_module(f"spectrum_tune.cli.{module}").__doc__ or "").strip()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            _command(name)(["--help"])
        text = out.getvalue().rstrip()
        parts += [f"## `spectrum-tune {name}`", "", doc, ""]
        if len(text.splitlines()) > MAX_HELP_LINES:  # train, grpo, dpo: every TRL config key is a flag
            parts += [
                f"Takes a recipe (`--config FILE.yaml`) and every key of its TRL config as a flag "
                f"({len(text.splitlines())} lines of help: run `spectrum-tune {name} --help`).",
                "",
            ]
        else:
            parts += ["```text", text, "```", ""]
    return "\n".join(parts)


def api_reference() -> str:
    """A ``:::`` block per public name, at the module that defines it (mkdocstrings renders them)."""
    import spectrum_tune

    blocks = []
    for name in spectrum_tune.__all__:
        if name.startswith("__"):
            continue  # __version__
        blocks += [f"::: spectrum_tune.{spectrum_tune._LAZY[name]}.{name}", ""]
    return "\n".join(blocks)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    # importing torch (through the config and the commands) warns about its own deprecations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _expand(markdown)


def _expand(markdown: str) -> str:
    if CONFIG_MARK in markdown:
        markdown = markdown.replace(CONFIG_MARK, config_fields_table())
    if API_MARK in markdown:
        markdown = markdown.replace(API_MARK, api_reference())
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    return markdown
