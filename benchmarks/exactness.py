"""How exact prefix sharing and the prompt-once sampler are on this device, as numbers.

    python -m benchmarks.exactness                 # both parts, every dtype the device runs
    python -m benchmarks.exactness --part prefix   # or --part sample

prefix: a random Llama (hidden 256, 4 layers, V 2048) with random-initialised LoRA r16 on every
linear layer, through SpectrumTrainer's own loss path, on groups with prompts and references of
different lengths (so padding is exercised). For each attention kernel (SDPA, eager) and dtype
(float32; bfloat16 where the device runs it, the model cast to bf16 and the trainer's bf16
autocast on) it prints, shared vs full sequences: the largest difference of the sequence
log-probs (nats) and the relative norm ‖g_shared − g_full‖ / ‖g_full‖ of the LoRA gradients
(and its largest per-tensor value); and, as the scale those are read against, the same for the
full path vs a float64 copy of the same weights.

sample: the tiny model on the held-out number tasks, ``generate_samples`` with the prompt encoded
once (the default) vs ``generate(num_return_sequences=n)``, same seed: how many of the samples are
identical, and the largest difference of the first sampled token's log-probs between the two
paths' prefills (the prompt but its last token at batch 1 plus the last token at batch n, vs the
whole prompt at batch n), the numeric cause of any draw that differs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import platform
from typing import Any

import torch

from benchmarks.common import random_llama

VOCAB = 2048
PROMPTS = (5, 23, 9)  # prompt lengths of the groups (different, so prompts and continuations pad)
K = 6


def _groups(seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    draw = lambda n: torch.randint(3, VOCAB, (n,), generator=generator).tolist()  # noqa: E731
    rows = []
    for prompt_len in PROMPTS:
        completions = [[*draw(2 + (3 * j) % 7), 1] for j in range(K)]  # 3 to 9 tokens, ending in id 1
        rows.append(
            {
                "prompt_ids": draw(prompt_len),
                "completion_ids": completions,
                "completion_mask": [[1] * len(c) for c in completions],
                "weights": [1.0 / K] * K,
            }
        )
    return rows


def _lora_trainer(attention: str, dtype: torch.dtype, output_dir: str) -> Any:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer

    from spectrum_tune import SpectrumConfig, SpectrumTrainer
    from spectrum_tune.world import tiny_model_path

    model = random_llama(VOCAB, 256, 4)
    model.config._attn_implementation = attention
    model.to(dtype)
    # init_lora_weights=False: A and B random, so both get gradients (B = 0 would zero A's)
    lora = LoraConfig(
        r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False
    )
    torch.manual_seed(1)
    config = SpectrumConfig(
        output_dir=output_dir,
        report_to=[],
        save_strategy="no",
        gradient_checkpointing=False,
        bf16=dtype == torch.bfloat16,
        spectrum_chunk_size=10_000,
        use_cpu=not torch.cuda.is_available(),
    )
    return SpectrumTrainer(
        model,
        args=config,
        train_dataset=Dataset.from_list(_groups()),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_path()),
        peft_config=lora,
    )


def _logps_and_grads(trainer: Any, model: Any, batch: dict, autocast: bool) -> tuple[torch.Tensor, dict]:
    """Sequence log-probs and the LoRA gradients of the trainer's loss on ``batch``."""
    model.zero_grad(set_to_none=True)
    # the trainer's own autocast (bf16) as in a training step; none for the float64 reference
    with trainer.compute_loss_context_manager() if autocast else contextlib.nullcontext():
        with torch.no_grad():
            logps = trainer._sequence_logps(model, batch)[0].double()
        loss = trainer.compute_loss(model, batch)
    loss.backward()
    grads = {name: p.grad.double().clone() for name, p in model.named_parameters() if p.grad is not None}
    return logps, grads


def _compare(a: tuple[torch.Tensor, dict], b: tuple[torch.Tensor, dict]) -> str:
    """``a`` against ``b``: largest log-prob difference, relative gradient norm (all, worst tensor)."""
    logp_diff = (a[0] - b[0]).abs().max().item()
    names = sorted(b[1])
    difference = torch.stack([(a[1][n] - b[1][n]).norm() for n in names])
    norms = torch.stack([b[1][n].norm() for n in names])
    relative = (difference.norm() / norms.norm()).item()
    worst = (difference / norms.clamp_min(1e-30)).max().item()
    return (
        f"log-prob max|Δ| {logp_diff:.2e} nats, LoRA grad rel-norm {relative:.2e} (worst tensor {worst:.2e})"
    )


def prefix_exactness(dtypes: list[torch.dtype]) -> list[str]:
    from spectrum_tune.training.collator import SpectrumCollator

    lines = []
    rows = _groups()
    for attention in ("sdpa", "eager"):
        for dtype in dtypes:
            trainer = _lora_trainer(attention, dtype, "/tmp/bench-exactness")
            model = trainer.model
            model.train()
            full, shared = (
                trainer._prepare_inputs(SpectrumCollator(0, prefix_sharing=sharing)(rows))
                for sharing in (False, True)
            )
            assert "prefix_ids" in shared and "prefix_ids" not in full
            autocast = dtype == torch.bfloat16
            results = {
                name: _logps_and_grads(trainer, model, batch, autocast)
                for name, batch in (("full", full), ("shared", shared))
            }
            reference = copy.deepcopy(model).to(torch.float64)  # the same (rounded) weights in float64
            results["float64"] = _logps_and_grads(trainer, reference, full, autocast=False)
            name = str(dtype).removeprefix("torch.")
            label = f"prefix {attention:5s} {name:8s}"
            lines.append(f"{label} shared vs full: {_compare(results['shared'], results['full'])}")
            lines.append(f"{label} full vs fp64:   {_compare(results['full'], results['float64'])}")
            print(lines[-2], lines[-1], sep="\n", flush=True)
            del trainer, model, reference
    return lines


def _first_token_gap(model: Any, input_ids: torch.Tensor, n: int) -> float:
    """Largest |Δ log p| of the first sampled token between the two paths' prefills at batch ``n``."""
    from spectrum_tune.evaluation.prompt_cache import encode_prompt, expanded_cache

    with torch.no_grad():
        copied = model(input_ids=input_ids.expand(n, -1)).logits[:, -1].float().log_softmax(-1)
        cache, reason = encode_prompt(model, input_ids)
        if cache is None:
            raise RuntimeError(f"the prompt cannot be encoded once: {reason}")
        once = (
            model(input_ids=input_ids[:, -1:].expand(n, 1), cache=expanded_cache(cache, n), use_cache=True)
            .logits[:, -1]
            .float()
            .log_softmax(-1)
        )
    return (copied - once).abs().max().item()


def sampler_draws(dtypes: list[torch.dtype], items: int, samples: int) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spectrum_tune.evaluation.sample import generate_samples, item_seed
    from spectrum_tune.evaluation.tasks import resolve_tasks
    from spectrum_tune.training.tokenize import _prompt_ids
    from spectrum_tune.world import tiny_model_path

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    jobs = [
        (task, index, item)
        for task in resolve_tasks(["eval/spread/numbers_heldout_seen_widths.yaml"])
        for index, item in enumerate(task.items)
    ][:items]
    lines = []
    for dtype in dtypes:
        model = AutoModelForCausalLM.from_pretrained(tiny_model_path(), dtype=dtype).to(device).eval()
        same = total = same_items = 0
        gap = 0.0
        for task, index, item in jobs:
            seed = item_seed(0, task.name, index)
            draws = [
                generate_samples(
                    model,
                    tokenizer,
                    item.prompt,
                    samples,
                    stop=task.stop,
                    seed=seed,
                    max_new_tokens=task.max_new_tokens,
                    prefill_once=once,
                )
                for once in (False, True)
            ]
            matches = sum(a == b for a, b in zip(*draws, strict=True))
            same, total, same_items = same + matches, total + samples, same_items + (matches == samples)
            input_ids = torch.tensor([_prompt_ids(item.prompt, tokenizer)], device=device)
            gap = max(gap, _first_token_gap(model, input_ids, min(samples, 64)))
        name = str(dtype).removeprefix("torch.")
        lines.append(
            f"sampler {name:8s} prompt-once vs generate(num_return_sequences={samples}), same seed: "
            f"{same}/{total} samples identical, {same_items}/{len(jobs)} items all identical; "
            f"first-token log-prob max|Δ| between the prefills {gap:.2e}"
        )
        print(lines[-1], flush=True)
        del model
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["prefix", "sample", "both"], default="both")
    parser.add_argument("--items", type=int, default=8, help="sample: the first N held-out number items")
    parser.add_argument("--samples", type=int, default=100, help="sample: n per item")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["float32", "bfloat16"],
        default=None,
        help="default: float32, and bfloat16 on a device that supports it",
    )
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    names = args.dtypes or (["float32", "bfloat16"] if bf16 else ["float32"])
    dtypes = [getattr(torch, name) for name in names]
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.machine()})"
    tf32 = torch.backends.cuda.matmul.allow_tf32
    print(
        f"# machine: {device}; torch {torch.__version__}; CUDA matmul TF32 {'on' if tf32 else 'off'}",
        flush=True,
    )
    if args.part in ("prefix", "both"):
        prefix_exactness(dtypes)
    if args.part in ("sample", "both"):
        sampler_draws(dtypes, args.items, args.samples)


if __name__ == "__main__":
    main()
