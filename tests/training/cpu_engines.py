"""Test-side adapter: the ``spectrum-tune`` CLI with accelerate's FSDP path allowed on CPU processes.

Why. accelerate picks FSDP only from GPU-like modes: with ``ACCELERATE_USE_CPU=true`` (the only way
to run several gloo processes on a CPU-only machine) its ``AcceleratorState`` settles on
``MULTI_CPU`` and silently trains plain DDP, whatever the FSDP config says. torch's FSDP itself
runs on CPU tensors with gloo. This adapter, run in each launched process instead of the CLI
(``accelerate launch ... -m tests.training.cpu_engines train --config R``), turns the settled
``MULTI_CPU`` state into ``FSDP`` with the plugin accelerate built from the config, so the shipped
code path (``Accelerator.prepare`` -> ``fully_shard``) is the one under test. FSDP2 only: FSDP1
(``fsdp_version: 1``) does not start on CPU processes with torch 2.13 (accelerate passes
``device_id=cpu``, which FSDP1 compares with ``cpu:0`` and refuses), so it is not tested here.

DeepSpeed needs no adapter: launched with ``use_cpu: false`` and the recipe's ``ddp_backend: gloo``
it runs ZeRO-2/3 on its own CPU accelerator. Every engine's launch goes through this module all the
same, because it also reports (:func:`report_engine`) which engine really wrapped the model: the
tests check that line, so a config that silently fell back to DDP fails. Nothing here is imported by
the package.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def allow_fsdp_on_cpu() -> None:
    """Patch accelerate so that ``ACCELERATE_USE_FSDP=true`` on ``MULTI_CPU`` means FSDP."""
    from accelerate import state
    from accelerate.utils import DistributedType

    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return
    original = state.AcceleratorState.__init__

    def init(self: Any, *args: Any, fsdp_plugin: Any = None, **kwargs: Any) -> None:
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if self.distributed_type == DistributedType.MULTI_CPU and fsdp_plugin is not None:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    state.AcceleratorState.__init__ = init


ENGINE_LINE = "cpu_engines:"


def describe(model: Any) -> str:
    """``engine=... wrapper=... sharded=...``: how the prepared model holds its parameters.

    Sharded means each rank holds a slice: FSDP2's DTensor parameters, FSDP1's flat parameters,
    or DeepSpeed ZeRO-3 partitions (a released parameter has no local data).
    """
    from accelerate.state import PartialState
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())
    sharded = (
        any(isinstance(p, DTensor) for p in params)
        or any(hasattr(p, "ds_status") and p.data.numel() == 0 for p in params)
        or type(model).__name__ == "FullyShardedDataParallel"
    )
    engine = PartialState().distributed_type.value
    return f"engine={engine} wrapper={type(model).__name__} sharded={sharded}"


def report_engine() -> None:
    """Print :func:`describe` of the model that ``Accelerator.prepare`` returns, once, on rank 0."""
    import torch
    from accelerate import Accelerator

    original = Accelerator.prepare

    def prepare(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        model = next((item for item in outputs if isinstance(item, torch.nn.Module)), None)
        if model is not None and self.is_main_process and not getattr(self, "_engine_reported", False):
            self._engine_reported = True
            print(ENGINE_LINE, describe(model), file=sys.stderr, flush=True)
        return result

    Accelerator.prepare = prepare


def main(argv: list[str] | None = None) -> int:
    allow_fsdp_on_cpu()
    report_engine()
    from spectrum_tune.cli import main as cli

    return cli(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
