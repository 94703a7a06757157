"""Public benchmarks, loaded through ``datasets`` by their real Hub ids (one small module per benchmark).

Select them like a suite: ``--tasks NAME`` or ``--tasks hub:HUB_ID``, with options after a colon,
``--tasks globalopinionqa:country=Japan,max_items=50``:

=========================  ===================================  =========================================
name                       Hub id                               tasks
=========================  ===================================  =========================================
``noveltybench``           ``yimingzhang/novelty-bench``        ``noveltybench_curated`` (``split=wildchat``
                                                                for the WildChat prompts)
``noveltybench_wildchat``  ``yimingzhang/novelty-bench``        ``noveltybench_wildchat``
``infinity_chat``          ``liweijiang/infinite-chats-eval``   ``infinity_chat``
``globalopinionqa``        ``Anthropic/llm_global_opinions``    distributional pluralism (``country=``)
``globalopinionqa_steer``  ``Anthropic/llm_global_opinions``    steerable pluralism (steered + unsteered)
``valueprism``             ``allenai/ValuePrism`` (``full``)    overtone pluralism (``valueprism_overtone``)
=========================  ===================================  =========================================

Options: ``split``, ``max_items`` (int), ``max_new_tokens`` (int), ``country``. ``hub:ID`` selects the
first benchmark of that id. The Spectrum diverse-valid task list ships as task files in
``eval/benchmarks/`` (suite ``benchmarks``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from ...errors import SpectrumError
from . import global_opinions, infinity_chat, noveltybench, valueprism

__all__ = ["BENCHMARKS", "is_benchmark", "load_benchmark"]

BENCHMARKS: dict[str, tuple[str, Callable[..., list[Any]]]] = {
    "noveltybench": (noveltybench.HUB_ID, noveltybench.load),
    "noveltybench_wildchat": (noveltybench.HUB_ID, partial(noveltybench.load, split="wildchat")),
    "infinity_chat": (infinity_chat.HUB_ID, infinity_chat.load),
    "globalopinionqa": (global_opinions.HUB_ID, global_opinions.load_distributional),
    "globalopinionqa_steer": (global_opinions.HUB_ID, global_opinions.load_steerable),
    "valueprism": (valueprism.HUB_ID, valueprism.load),
}
_INT_OPTIONS = {"max_items", "max_new_tokens"}
_OPTIONS = {"split", "country", *_INT_OPTIONS}


def _split_spec(spec: str) -> tuple[str, dict[str, Any]]:
    if spec.startswith("hub:"):
        rest = spec[4:]
        hub_id, _, options = rest.partition(":")
        names = [name for name, (hid, _) in BENCHMARKS.items() if hid == hub_id]
        if not names:
            known = sorted({hid for hid, _ in BENCHMARKS.values()})
            raise SpectrumError(f"unknown benchmark Hub id '{hub_id}' (known: {', '.join(known)})")
        name = names[0]
    else:
        name, _, options = spec.partition(":")
    parsed: dict[str, Any] = {}
    for option in filter(None, options.split(",")):
        key, equals, value = option.partition("=")
        if not equals or key not in _OPTIONS:
            raise SpectrumError(
                f"benchmark '{spec}': bad option '{option}' (use {', '.join(sorted(_OPTIONS))})"
            )
        if key in _INT_OPTIONS:
            if not value.isdigit() or int(value) < 1:
                raise SpectrumError(f"benchmark '{spec}': {key} must be a positive integer, got '{value}'")
            parsed[key] = int(value)
        else:
            parsed[key] = value
    return name, parsed


def is_benchmark(spec: str) -> bool:
    """Whether a ``--tasks`` entry names a benchmark (``hub:...`` or a registered name)."""
    return spec.startswith("hub:") or spec.partition(":")[0] in BENCHMARKS


def load_benchmark(spec: str) -> list[Any]:
    """The tasks of one benchmark spec (see the module docstring)."""
    name, options = _split_spec(spec)
    _, loader = BENCHMARKS[name]
    accepted = set(inspect.signature(loader).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise SpectrumError(
            f"benchmark '{spec}' does not take option '{unknown[0]}' (it takes {', '.join(sorted(accepted))})"
        )
    return loader(**options)
