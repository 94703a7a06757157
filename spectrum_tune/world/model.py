"""The tiny offline language model: ship, build, pretrain and cache it.

No model hub is reachable from the build and test machines, so tests and the demo use a model
built from the synthetic corpus (:mod:`.corpus`) in the ChatML and in-context (Spectrum) formats,
the tokenizer of :mod:`.tokenizer`, and a ~1M-parameter Llama-style model pretrained with a plain
torch loop. The default config's build ships with the package (``shipped/tiny``, ~4.5 MB): float
results differ across CPUs, so a model pretrained on each machine would be a slightly different
base on each, and the demo's numbers with it. Other configs (and ``spectrum-tune tiny-model
--rebuild``) are built on the machine and cached on disk, keyed by a hash of the config.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from .corpus import FORMAT_VERSION, TinyConfig, build_corpus
from .tokenizer import build_tokenizer

if TYPE_CHECKING:  # torch and transformers load lazily: the cache logic needs neither
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CACHE_ENV = "SPECTRUM_TUNE_CACHE"
INFO_FILE = "tiny_world.json"
# The default config's build, shipped as package data so every machine loads the same weights.
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped" / "tiny"


def _pack(ids: Sequence[Sequence[int]], seq_len: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedily pack whole documents into rows of ``seq_len`` (every row starts a document, as a
    prompt does at inference); returns (input_ids, labels) with padding masked out of the loss."""
    import torch

    rows: list[list[int]] = []
    row: list[int] = []
    for doc in ids:
        doc = list(doc[:seq_len])
        if len(row) + len(doc) > seq_len:
            rows.append(row)
            row = []
        row += doc
    if row:
        rows.append(row)
    input_ids = torch.full((len(rows), seq_len), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), seq_len), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(r)] = torch.tensor(r)
    return input_ids, labels


def _batches(n_rows: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless row-index batches, reshuffled every epoch."""
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            fresh = list(range(n_rows))
            rng.shuffle(fresh)
            order += fresh
        yield order[:batch_size]
        order = order[batch_size:]


def _model_config(config: TinyConfig, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden,
        intermediate_size=config.intermediate,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _pretrain(
    model: LlamaForCausalLM,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    config: TinyConfig,
    progress: bool,
) -> list[float]:
    """Plain AdamW loop with linear warmup and cosine decay (faster than HF Trainer here)."""
    import torch
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay
    )

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress_frac = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress_frac))  # decays to 10% of lr

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    losses: list[float] = []
    batches = _batches(len(input_ids), config.batch_size, config.seed)
    bar = tqdm(range(config.steps), desc="pretraining tiny model", disable=not progress)
    for _ in bar:
        idx = next(batches)
        loss = model(input_ids=input_ids[idx], labels=labels[idx]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return losses


def build_tiny_model(
    out_dir: str | os.PathLike, config: TinyConfig = TinyConfig(), progress: bool = True
) -> Path:
    """Build corpus and tokenizer, pretrain the model, and save both to ``out_dir``.

    Everything is written into a temporary directory beside ``out_dir`` and renamed into place, so
    a crash never leaves a half-written model behind. Returns ``out_dir``.
    """
    import torch
    from transformers import LlamaForCausalLM

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    corpus = build_corpus(config)
    tokenizer = build_tokenizer(corpus, config)
    ids = tokenizer(corpus, add_special_tokens=False)["input_ids"]
    input_ids, labels = _pack(ids, config.seq_len, tokenizer.pad_token_id)
    data_seconds = time.perf_counter() - start

    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(_model_config(config, tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    losses = _pretrain(model, input_ids, labels, config, progress)

    info = {
        "format_version": FORMAT_VERSION,
        "config": asdict(config),
        "steps": config.steps,
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "corpus_docs": len(corpus),
        "train_tokens": int((labels != -100).sum()),
        "packed_rows": len(input_ids),
        "data_seconds": round(data_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "torch_threads": torch.get_num_threads(),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is moved aside first (rename is atomic)."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old.{os.getpid()}")
        dst.rename(old)
    src.rename(dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- cache ---------------------------------------------------------------------------------------


def _key(format_version: int, config: dict) -> str:
    payload = json.dumps({"format_version": format_version, **config}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def config_key(config: TinyConfig) -> str:
    """Short hash of the config and :data:`FORMAT_VERSION`, naming the cache folder."""
    return _key(FORMAT_VERSION, asdict(config))


def shipped_tiny_model(config: TinyConfig | None = None) -> Path | None:
    """The model directory shipped with the package if it was built from ``config`` (default:
    ``TinyConfig()``) by this :data:`FORMAT_VERSION`, else None."""
    info_path = SHIPPED_DIR / INFO_FILE
    if not info_path.is_file():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if _key(info["format_version"], info["config"]) != config_key(config or TinyConfig()):
        return None
    return SHIPPED_DIR


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$SPECTRUM_TUNE_CACHE``, else ``~/.cache/spectrum-tune``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "spectrum-tune"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive ``fcntl`` lock, so concurrent processes build (or assemble) a model only once."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tiny_model_path(
    config: TinyConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    shipped: bool = True,
) -> Path:
    """The tiny model directory for ``config``: the shipped one when it was built from ``config``
    (and ``shipped`` is true), else the cached build, built once under a lock if missing.

    Load it with ``AutoModelForCausalLM.from_pretrained(path)`` and
    ``AutoTokenizer.from_pretrained(path)``.
    """
    config = config or TinyConfig()
    if shipped and (path := shipped_tiny_model(config)) is not None:
        return path
    root = cache_root(cache_dir)
    path = root / f"tiny-{config_key(config)}"
    if (path / INFO_FILE).exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"{path.name}.lock"):
        if not (path / INFO_FILE).exists():  # another process may have built it meanwhile
            build_tiny_model(path, config, progress=progress)
    return path
