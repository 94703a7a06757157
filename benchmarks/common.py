"""Shared pieces of the benchmarks: a random Llama of a chosen size, timing, peak memory."""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable

import torch


def random_llama(vocab: int, hidden: int, layers: int, seed: int = 0):
    """A randomly initialised Llama-style causal LM (the benchmarks measure cost, not quality)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1),
        num_key_value_heads=max(hidden // 64, 1),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
    )
    return LlamaForCausalLM(config)


def bench_model(size: dict | None, threads: int):
    """``(model, tokenizer)``: the tiny model, SmolLM2-135M-Instruct (``size="smollm2"``), or a random
    Llama of ``size`` (hidden, layers and an optional vocab) with the tiny model's tokenizer; torch
    uses ``threads`` threads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spectrum_tune.world import tiny_model_path

    torch.set_num_threads(threads)
    if size == "smollm2":  # the offline SmolLM2-135M-Instruct (GGUF, dequantised to float32)
        from spectrum_tune.models import resolve_model

        directory, gguf = resolve_model("spectrum-tune/smollm2")
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf)
        return AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf), tokenizer
    path = tiny_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if size is None:
        return AutoModelForCausalLM.from_pretrained(path), tokenizer
    return random_llama(size.get("vocab", len(tokenizer)), size["hidden"], size["layers"]), tokenizer


def training_step_fn(trainer, rows: int) -> Callable[[], None]:
    """One optimizer step (forward, backward, AdamW) of ``trainer`` on its first ``rows`` rows, as a
    closure: the batch is collated and moved to the device once, outside the timed region."""
    examples = [trainer.train_dataset[i] for i in range(rows)]
    batch = trainer._prepare_inputs(trainer.data_collator(examples))
    trainer.create_optimizer_and_scheduler(num_training_steps=100)
    trainer.current_gradient_accumulation_steps = 1  # set by train(); the steps here run outside it
    trainer.model.train()

    def step() -> None:
        trainer.training_step(trainer.model, dict(batch))
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)

    return step


def run_worker(module: str, config: dict) -> dict:
    """Run ``python -m module --worker CONFIG`` in a fresh process (so its peak memory is its own)
    and return the JSON object it prints last."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", module, "--worker", json.dumps(config)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def synchronize() -> None:
    """Wait for queued CUDA work (a no-op on CPU): CUDA kernels run asynchronously, so a host clock
    read right after a step would time only their launch."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_seconds(step: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    """Median wall time of ``step`` over ``repeats`` runs after ``warmup`` runs (device work included)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    gc.collect()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_tensor_mib(step: Callable[[], object]) -> float:
    """Peak bytes of live tensors during one call of ``step``, above the level when it starts (MiB).

    On GPU this is ``torch.cuda.max_memory_allocated`` minus the allocated bytes at the start. On
    CPU there is no allocator statistic, and peak RSS mostly measures one-time costs (thread
    pools, oneDNN primitives, allocator arenas that glibc keeps), which hide how activation
    memory scales. So the step runs once under ``torch.profiler`` with ``profile_memory=True``:
    every op records the bytes it allocated net of what it freed (``self_cpu_memory_usage``) and
    frees outside ops are ``[memory]`` events, so the running sum in time order is the live-tensor
    level at op granularity (an op's internal scratch that it frees before returning is not seen).
    """
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - start) / 2**20
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    level = peak = 0
    for event in sorted(prof.events(), key=lambda event: event.time_range.start):
        level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20


class ReplayedGRPOSteps:
    """A ``trl.GRPOTrainer`` whose first rollouts are replayed for every step, so that timed arms
    differ only in their reward functions (generation, the dominant and noisiest cost, runs once).

    ``step(name, reward)`` scores the replayed rollouts with ``reward`` and runs the GRPO loss and
    its backward, returning the seconds; ``after`` runs inside the timed span (an EMA update, say).
    """

    def __init__(self, model, tokenizer, dataset, reward, prompts: int, generations: int):
        import copy
        import tempfile

        from trl import GRPOTrainer

        from spectrum_tune.rl.config import GRPOConfig

        self.batch = prompts * generations
        with tempfile.TemporaryDirectory() as output_dir:
            config = GRPOConfig(
                output_dir=output_dir,
                per_device_train_batch_size=self.batch,
                num_generations=generations,
                max_completion_length=8,
                max_steps=1,
                report_to="none",
                disable_tqdm=True,
                seed=0,
            )
            self.trainer = GRPOTrainer(
                model=model,
                reward_funcs=[reward],
                args=config,
                train_dataset=dataset,
                processing_class=tokenizer,
            )
        self.inputs = [dict(dataset[i]) for i in range(prompts) for _ in range(generations)]
        generate, self.kept = self.trainer._generate, {}

        def replay(prompt_batch):
            if "rollouts" not in self.kept:
                started = time.perf_counter()
                self.kept["rollouts"] = generate(prompt_batch)
                self.kept["seconds"] = time.perf_counter() - started
            return copy.deepcopy(self.kept["rollouts"])

        self.trainer._generate = replay
        self.trainer.current_gradient_accumulation_steps = 1  # set by train(); these steps run outside it
        self.trainer.model.train()

    def step(self, name: str, reward, after: Callable[[], object] | None = None) -> float:
        trainer = self.trainer
        trainer.reward_funcs, trainer.reward_func_names = [reward], [name]
        started = time.perf_counter()
        prepared = trainer._generate_and_score_completions(self.inputs)
        loss = trainer.compute_loss(trainer.model, prepared)
        loss.backward()
        if after is not None:
            after()
        elapsed = time.perf_counter() - started
        trainer.model.zero_grad(set_to_none=True)
        return elapsed
