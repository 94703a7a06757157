"""One table of the figures that need an accelerator: bf16 spectrum vs SFTTrainer, GEM vs NLL, QLoRA,
and sample- vs score-mode eval, all measured in this process on the same tokens.

    python -m benchmarks.gpu              # on CUDA: bf16, a ~0.1B random Llama (hidden 768, 12 layers)
    python -m benchmarks.gpu --smoke      # tiny sizes, any device (CI runs this on CPU)

Rows (each a ratio against a baseline measured in the same run):
- spectrum vs trl.SFTTrainer on the same K x G sequences, K = 16 and 64, with the default
  ``spectrum_chunk_size`` (64) and with every reference in one chunk: median optimizer-step time
  and peak live-tensor memory (torch.cuda.max_memory_allocated above the start on CUDA; torch.profiler
  on CPU, see benchmarks.common.peak_tensor_mib);
- GEM vs the NLL path on single-reference rows (`spectrum_loss_type: gem`);
- QLoRA (4-bit NF4 base + LoRA r16) vs LoRA on the same model in the run's dtype, spectrum loss;
- eval: sample mode (N samples per item) vs score mode (exact log-probs) on the same items.
The model is random (these rows measure cost, not quality), with the tiny world's tokenizer. Print
the machine line and paste the table into docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import tempfile
from typing import Any

import torch

from benchmarks import bench_gem, bench_trainer
from benchmarks.common import median_seconds, peak_tensor_mib, random_llama, training_step_fn

SIZES = {
    "gpu": {
        "hidden": 768,
        "layers": 12,
        "vocab": 32768,
        "groups": 8,
        "prompt": 128,
        "output": 8,
        "ks": (16, 64),
        "gem_rows": 16,
        "gem_output": 64,
        "samples": 100,
        "repeats": 10,
    },
    "smoke": {
        "hidden": 64,
        "layers": 2,
        "vocab": None,
        "groups": 2,
        "prompt": 16,
        "output": 4,
        "ks": (4, 8),
        "gem_rows": 2,
        "gem_output": 8,
        "samples": 8,
        "repeats": 2,
    },
}


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from spectrum_tune.world import tiny_model_path

    return AutoTokenizer.from_pretrained(tiny_model_path())


def _model(size: dict, tokenizer: Any, dtype: torch.dtype) -> Any:
    return random_llama(size["vocab"] or len(tokenizer), size["hidden"], size["layers"]).to(dtype)


def _measure(trainer: Any, rows: int, repeats: int) -> tuple[float, float]:
    step = training_step_fn(trainer, rows)
    seconds = median_seconds(step, repeats=repeats)
    return seconds, peak_tensor_mib(step)


def _release(*objects: Any) -> None:
    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def spectrum_vs_sft(size: dict, tokenizer: Any, dtype: torch.dtype, bf16: bool) -> list[tuple[str, str]]:
    rows = []
    for k in size["ks"]:
        shape = {"groups": size["groups"], "prompt": size["prompt"], "output": size["output"], "k": k}
        groups = bench_trainer.token_groups(shape, len(tokenizer))
        measured = {}
        # the default chunk (64: two passes once the batch has more references) and one chunk of all
        # of them: on a GPU the chunked step is launch-bound, its time tracks the chunk count (docs/gpu.md)
        for name, arm, chunk in (
            ("sft", "sft", 64),
            ("spectrum", "spectrum", 64),
            ("one chunk", "spectrum", size["groups"] * k),
        ):
            trainer, n = bench_trainer.build_trainer(
                arm, _model(size, tokenizer, dtype), tokenizer, groups, chunk=chunk, bf16=bf16
            )
            measured[name] = _measure(trainer, n, size["repeats"])
            _release(trainer)
        (sft_s, sft_m), (spec_s, spec_m), (one_s, one_m) = measured.values()
        rows.append(
            (
                f"spectrum vs SFTTrainer, K={k} (G={size['groups']}, P={size['prompt']}, R={size['output']})",
                f"time {spec_s / sft_s:.2f}x ({spec_s * 1e3:.1f} vs {sft_s * 1e3:.1f} ms), "
                f"memory {spec_m / max(sft_m, 1e-9):.2f}x ({spec_m:.1f} vs {sft_m:.1f} MiB); "
                f"in one chunk: time {one_s / sft_s:.2f}x ({one_s * 1e3:.1f} ms), "
                f"memory {one_m / max(sft_m, 1e-9):.2f}x ({one_m:.1f} MiB)",
            )
        )
    return rows


def gem_vs_nll(size: dict, tokenizer: Any, dtype: torch.dtype, bf16: bool) -> list[tuple[str, str]]:
    config = {"groups": size["gem_rows"], "prompt": size["prompt"], "output": size["gem_output"]}
    data = bench_gem.single_reference_rows(config, len(tokenizer))
    measured = {}
    for arm in ("nll-naive", "gem"):
        trainer = bench_gem.build_trainer(arm, _model(size, tokenizer, dtype), tokenizer, data, bf16=bf16)
        measured[arm] = _measure(trainer, len(data), size["repeats"])
        _release(trainer)
    (nll_s, nll_m), (gem_s, gem_m) = measured["nll-naive"], measured["gem"]
    vocab = size["vocab"] or len(tokenizer)
    return [
        (
            f"GEM vs NLL, K=1 ({len(data)} rows, R={size['gem_output']}, V={vocab})",
            f"time {gem_s / nll_s:.2f}x ({gem_s * 1e3:.1f} vs {nll_s * 1e3:.1f} ms), "
            f"memory {gem_m / max(nll_m, 1e-9):.2f}x",
        )
    ]


def qlora_vs_lora(size: dict, tokenizer: Any, dtype: torch.dtype, bf16: bool) -> list[tuple[str, str]]:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    shape = {"groups": size["groups"], "prompt": size["prompt"], "output": size["output"], "k": size["ks"][0]}
    groups = bench_trainer.token_groups(shape, len(tokenizer))
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as folder:
        _model(size, tokenizer, torch.float32).save_pretrained(folder)
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
        device_map = {"": 0} if torch.cuda.is_available() else None
        measured, weights = {}, {}
        for arm, kwargs in (("lora", {"dtype": dtype}), ("qlora", {"quantization_config": quantization})):
            model = AutoModelForCausalLM.from_pretrained(folder, device_map=device_map, **kwargs)
            weights[arm] = model.get_memory_footprint() / 2**20  # the base's weights: what 4-bit shrinks
            trainer, n = bench_trainer.build_trainer(
                "spectrum", model, tokenizer, groups, bf16=bf16, peft_config=lora
            )
            measured[arm] = _measure(trainer, n, size["repeats"])
            _release(trainer, model)
    (lora_s, lora_m), (q_s, q_m) = measured["lora"], measured["qlora"]
    return [
        (
            f"QLoRA vs LoRA r16, spectrum K={shape['k']}",
            f"time {q_s / lora_s:.2f}x ({q_s * 1e3:.1f} vs {lora_s * 1e3:.1f} ms), "
            f"step memory {q_m / max(lora_m, 1e-9):.2f}x ({q_m:.1f} vs {lora_m:.1f} MiB), "
            f"weights {weights['qlora']:.0f} vs {weights['lora']:.0f} MiB",
        )
    ]


def sample_vs_score(size: dict, tokenizer: Any, dtype: torch.dtype) -> list[tuple[str, str]]:
    from spectrum_tune.evaluation.sample import sample_task
    from spectrum_tune.evaluation.score import score_task
    from spectrum_tune.evaluation.tasks import resolve_tasks

    tasks = resolve_tasks(["eval/spread/numbers_heldout_new_widths.yaml"])
    # the tokenizer's vocabulary: ids beyond it decode to nothing, so samples would not be task text
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _model({**size, "vocab": None}, tokenizer, dtype).to(device).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    def score() -> None:
        for task in tasks:
            score_task(model, tokenizer, task, batch_size=64, prefix_sharing=True)

    def sample() -> None:
        for task in tasks:
            sample_task(model, tokenizer, task, samples=size["samples"], batch_size=64, progress=False)

    repeats = max(1, size["repeats"] // 3)
    scored = median_seconds(score, repeats=repeats, warmup=1)
    sampled = median_seconds(sample, repeats=repeats, warmup=1)
    items = sum(len(task.items) for task in tasks)
    return [
        (
            f"eval sample (N={size['samples']}) vs score, {items} items, V={len(tokenizer)}",
            f"sample/score {sampled / scored:.1f}x ({sampled:.2f} vs {scored:.2f} s)",
        )
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU, CI)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (ignored on CUDA)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["spectrum", "gem", "qlora", "eval"])
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    size = SIZES["smoke" if args.smoke or not cuda else "gpu"]
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    torch.set_num_threads(args.threads)
    cpu = f"CPU ({platform.machine()}, {args.threads} thread(s))"
    device = torch.cuda.get_device_name(0) if cuda else cpu
    sizes = "smoke" if size is SIZES["smoke"] else "gpu"
    cuda_version = f" (CUDA {torch.version.cuda})" if cuda else ""
    print(
        f"# machine: {device}; torch {torch.__version__}{cuda_version}; dtype {dtype}; sizes {sizes} "
        f"(hidden {size['hidden']}, {size['layers']} layers)"
    )
    tokenizer = _tokenizer()
    sections = {
        "spectrum": lambda: spectrum_vs_sft(size, tokenizer, dtype, bf16),
        "gem": lambda: gem_vs_nll(size, tokenizer, dtype, bf16),
        "qlora": lambda: qlora_vs_lora(size, tokenizer, dtype, bf16),
        "eval": lambda: sample_vs_score(size, tokenizer, dtype),
    }
    # each row as soon as it is measured, so a run stopped at its time limit keeps what it finished
    print("| measurement | result |\n|---|---|", flush=True)
    for name, section in sections.items():
        if name not in args.skip:
            for label, result in section():
                print(f"| {label} | {result} |", flush=True)


if __name__ == "__main__":
    main()
