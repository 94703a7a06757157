"""The documentation site's generated pages: the API reference lists every public name, the config
page every field SpectrumConfig adds with its help, the CLI page every command. The strict build
itself (`make docs`, part of `make test`) checks links, anchors and nav."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import spectrum_tune
from spectrum_tune.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/hooks/config_fields.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_lists_every_public_name():
    blocks = re.findall(r"^::: (\S+)$", _hooks().api_reference(), re.MULTILINE)
    public = [name for name in spectrum_tune.__all__ if not name.startswith("__")]
    assert [block.rsplit(".", 1)[1] for block in blocks] == public
    for block in blocks:  # each points at the module that defines the name
        module, name = block.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is getattr(spectrum_tune, name)


def test_config_page_lists_every_spectrum_field_with_help():
    from trl import SFTConfig

    from spectrum_tune import SpectrumConfig

    table = _hooks().config_fields_table()
    inherited = {f.name for f in dataclasses.fields(SFTConfig)}
    own = [f for f in dataclasses.fields(SpectrumConfig) if f.name not in inherited]
    assert own
    for field in own:
        assert field.metadata.get("help"), f"SpectrumConfig.{field.name} has no help text"
        assert f"| `{field.name}` |" in table


def test_cli_page_lists_every_command():
    page = _hooks().cli_reference()
    for name in COMMANDS:
        assert f"## `spectrum-tune {name}`" in page


def test_every_page_in_nav_exists_and_every_guide_is_in_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r":\s*([\w/-]+\.md)\s*$", config, re.MULTILINE)
    assert nav and all((ROOT / "docs" / page).is_file() for page in nav)
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    missing = sorted(pages - set(nav))
    assert not missing, f"docs pages not in mkdocs.yml's nav (add each under its section): {missing}"
