"""Griffe extension for the API pages: render the docstrings' Sphinx roles as code.

The package's docstrings use reST cross-reference roles (``:class:`Task```, ``:func:`~x.y```),
which mkdocstrings' Markdown would print verbatim; this turns each into an inline code span of
the name (``~`` keeps its last part, as Sphinx does), and TRL-style ``[`Name`]`` links into code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|py:\w+):`(~?)([^`]+)`")
TRL_LINK = re.compile(r"\[`([^`\]]+)`\](?!\()")


def _role(match: re.Match) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def plain_markdown(text: str) -> str:
    """``text`` with Sphinx roles and TRL's bracket links turned into code spans."""
    return TRL_LINK.sub(r"`\1`", ROLE.sub(_role, text))


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring once, as griffe loads the object."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_markdown(obj.docstring.value)
