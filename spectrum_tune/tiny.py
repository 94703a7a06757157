"""The tiny offline language model of the tiny world (:mod:`spectrum_tune.world`).

No model hub is reachable from the build and test machines, so tests and the demo use a model
built here in a few minutes on CPU: a synthetic corpus in the ChatML and in-context (Spectrum)
formats, a byte-level BPE tokenizer where every integer 0..999 is one token, and a ~1M-parameter
Llama-style model pretrained with a plain torch loop. The corpus answers open prompts with a
deliberate bias (see :mod:`spectrum_tune.world`) so that the base model shows mode collapse that
tuning has to fix. Built models are cached on disk, keyed by a hash of the config.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spectrum_tune import world

if TYPE_CHECKING:  # torch and transformers load lazily: the world and the cache logic need neither
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

FORMAT_VERSION = 3
"""Bump when the corpus, tokenizer or training code changes in a way that invalidates caches."""

PAD_TOKEN = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, IM_END)  # ids 0, 1, 2

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    # generation markers let TRL's assistant_only_loss find the assistant tokens
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML: each message is ``<|im_start|>{role}\\n{content}<|im_end|>\\n``."""

SYSTEM_PROMPTS = ("You are a helpful assistant.", "Answer briefly.")
CACHE_ENV = "SPECTRUM_TUNE_CACHE"
INFO_FILE = "tiny_world.json"


@dataclass(frozen=True)
class TinyConfig:
    """Everything that determines the tiny model; the cache key is a hash of these fields."""

    seed: int = 0
    # model
    layers: int = 4
    hidden: int = 128
    heads: int = 4
    intermediate: int = 384
    max_positions: int = 1024
    # tokenizer: size of the trained byte-level BPE before the number tokens are added; at 1200
    # short members ("blue", "Japan") are one token, longer ones ("New Hampshire") several
    bpe_vocab: int = 1200
    # corpus: number of documents and the share of each document kind
    corpus_docs: int = 60_000
    chat_share: float = 0.6
    incontext_share: float = 0.2
    sentences_share: float = 0.2
    common_range_share: float = 0.5  # "Pick a number" prompts that use world.COMMON_RANGES
    max_incontext_examples: int = 12
    # training
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 600
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01


# --- corpus --------------------------------------------------------------------------------------


def render_turn(role: str, content: str) -> str:
    """One ChatML turn, exactly as :data:`CHAT_TEMPLATE` renders it."""
    return f"{IM_START}{role}\n{content}{IM_END}\n"


def _draw(rng: random.Random, dist: Mapping[str, float]) -> str:
    return rng.choices(list(dist), weights=list(dist.values()))[0]


def _number_range(rng: random.Random, config: TinyConfig) -> tuple[int, int]:
    if rng.random() < config.common_range_share:
        return rng.choice(world.COMMON_RANGES)
    a = rng.randint(0, world.PICK_RANGE_MAX - 1)
    return a, rng.randint(a + 1, world.PICK_RANGE_MAX)


def _coin_p(rng: random.Random) -> int:
    return rng.randrange(5, 100, 5)


def _die_percents(rng: random.Random) -> list[int]:
    units = rng.choices(range(6), k=20)  # twenty 5% units spread over the faces
    return [5 * units.count(face) for face in range(6)]


def _urn_counts(rng: random.Random) -> dict[str, int]:
    colors = rng.sample(world.URN_COLORS, rng.randint(2, 4))
    return {c: rng.randint(1, 5) for c in colors}


def _sum_pair(rng: random.Random) -> tuple[int, int]:
    hi = 9 if rng.random() < 0.6 else 99  # mostly small sums, which the corpus gets right
    return rng.randint(0, hi), rng.randint(0, hi)


def _wrong(rng: random.Random, right: str, options: Sequence[str]) -> str:
    return rng.choice([o for o in options if o != right])


def _chat_pair(rng: random.Random, config: TinyConfig) -> tuple[str, str]:
    """One (prompt, answer) exchange, answered as the biased/imperfect corpus does."""
    family = rng.choices(
        ("number", "name", "coin", "die", "urn", "capital", "weekday", "sum"),
        weights=(0.25, 0.33, 0.05, 0.04, 0.08, 0.1, 0.06, 0.09),
    )[0]
    if family == "number":
        a, b = _number_range(rng, config)
        return world.pick_number_prompt(a, b), _draw(rng, world.biased_number_distribution(a, b))
    if family == "name":
        category = rng.choice(list(world.CATEGORIES))
        return world.name_a_prompt(category), _draw(rng, world.biased_distribution(category))
    if family == "coin":
        p = _coin_p(rng)
        answers = world.corpus_stated_distribution(world.coin_target(p))
        return world.coin_prompt(p), _draw(rng, answers)
    if family == "die":
        percents = _die_percents(rng)
        answers = world.corpus_stated_distribution(world.die_target(percents))
        return world.die_prompt(percents), _draw(rng, answers)
    if family == "urn":
        counts = _urn_counts(rng)
        answers = world.corpus_stated_distribution(world.urn_target(counts))
        return world.urn_prompt(counts), _draw(rng, answers)
    if family == "capital":
        country = rng.choice(world.COUNTRIES)
        answer = world.CAPITALS[country]
        if rng.random() > world.CLOSED_ACCURACY:
            answer = _wrong(rng, answer, list(world.CAPITALS.values()))
        return world.capital_prompt(country), answer
    if family == "weekday":
        day = rng.choice(world.WEEKDAYS)
        answer = world.next_weekday(day)
        if rng.random() > world.CLOSED_ACCURACY:
            answer = _wrong(rng, answer, world.WEEKDAYS)
        return world.next_weekday_prompt(day), answer
    x, y = _sum_pair(rng)
    total = x + y
    if rng.random() > world.arithmetic_accuracy(x, y):
        total = max(0, total + rng.choice((-3, -2, -1, 1, 2, 3, 10, -10)))
    return world.arithmetic_prompt(x, y), str(total)


def _chat_document(rng: random.Random, config: TinyConfig) -> str:
    """A conversation: an optional system turn, then one to three user/assistant exchanges."""
    turns = [render_turn("system", rng.choice(SYSTEM_PROMPTS))] if rng.random() < 0.2 else []
    for _ in range(rng.choice((1, 1, 2, 3))):
        prompt, answer = _chat_pair(rng, config)
        turns += [render_turn("user", prompt), render_turn("assistant", answer)]
    return "".join(turns)


Sampler = Callable[[random.Random], tuple[str | None, str]]
"""Draws one in-context example: (input or None, output)."""


def _no_input(dist: Mapping[str, float]) -> Sampler:
    return lambda rng: (None, _draw(rng, dist))


def _incontext_task(rng: random.Random, config: TinyConfig) -> tuple[str, Sampler]:
    """A task for an in-context document: its description and an example sampler.

    In-context outputs are i.i.d. draws from the *true* task distribution (unlike the biased chat
    answers), so the model learns to read the distribution off the description and examples.
    """
    kind = rng.choices(
        ("numbers", "names", "subset", "coin", "urn", "capital", "weekday", "sum"),
        weights=(0.25, 0.2, 0.15, 0.1, 0.1, 0.08, 0.06, 0.06),
    )[0]
    if kind == "numbers":
        a, b = _number_range(rng, config)
        numbers = [str(n) for n in range(a, b + 1)]
        return world.numbers_description(a, b), _no_input(world.uniform_distribution(numbers))
    if kind in ("names", "subset"):
        category = rng.choice(list(world.CATEGORIES))
        members = world.CATEGORIES[category]
        if kind == "subset":  # a few members with random weights: steerable only in context
            members = rng.sample(members, rng.randint(2, min(5, len(members))))
            dist = {m: rng.random() + 0.1 for m in members}
        else:
            dist = world.uniform_distribution(members)
        return world.names_description(category), _no_input(dist)
    if kind == "coin":
        p = _coin_p(rng)
        return world.coin_description(p), _no_input(world.coin_target(p))
    if kind == "urn":
        counts = _urn_counts(rng)
        return world.urn_description(counts), _no_input(world.urn_target(counts))
    if kind == "capital":

        def capital(r: random.Random) -> tuple[str, str]:
            country = r.choice(world.COUNTRIES)
            return country, world.CAPITALS[country]

        return world.CAPITALS_DESCRIPTION, capital
    if kind == "weekday":

        def weekday(r: random.Random) -> tuple[str, str]:
            day = r.choice(world.WEEKDAYS)
            return day, world.next_weekday(day)

        return world.NEXT_WEEKDAY_DESCRIPTION, weekday

    def add(r: random.Random) -> tuple[str, str]:
        x, y = _sum_pair(r)
        return f"{x} plus {y}", str(x + y)

    return world.SUM_DESCRIPTION, add


def _incontext_document(rng: random.Random, config: TinyConfig) -> str:
    """Spectrum format: optional description (p=0.6, as in the published recipe), then examples."""
    description, sample = _incontext_task(rng, config)
    turns = [render_turn("description", description)] if rng.random() < 0.6 else []
    for _ in range(rng.randint(3, config.max_incontext_examples)):
        x, y = sample(rng)
        if x is not None:
            turns.append(render_turn("input", x))
        turns.append(render_turn("output", y))
    return "".join(turns)


def _sentence(rng: random.Random, config: TinyConfig) -> str:
    """One plain sentence about the world; favourites follow the same bias as the chat answers."""
    kind = rng.choice(("member", "favourite", "number", "capital", "weekday", "sum"))
    category = rng.choice(list(world.CATEGORIES))
    if kind == "member":
        return f"{rng.choice(world.CATEGORIES[category])} is a {category}."
    if kind == "favourite":
        return f"My favorite {category} is {_draw(rng, world.biased_distribution(category))}."
    if kind == "number":
        dist = world.biased_number_distribution(0, world.PICK_RANGE_MAX)
        return f"My favorite number is {_draw(rng, dist)}."
    if kind == "capital":
        country = rng.choice(world.COUNTRIES)
        return f"The capital of {country} is {world.CAPITALS[country]}."
    if kind == "weekday":
        day = rng.choice(world.WEEKDAYS)
        return f"{world.next_weekday(day)} comes after {day}."
    x, y = _sum_pair(rng)
    return f"{x} plus {y} is {x + y}."


def _sentences_document(rng: random.Random, config: TinyConfig) -> str:
    return " ".join(_sentence(rng, config) for _ in range(rng.randint(2, 5))) + "\n"


def build_corpus(config: TinyConfig = TinyConfig()) -> list[str]:
    """The pretraining documents: chat, in-context and plain-sentence documents, seeded."""
    rng = random.Random(config.seed)
    makers = (_chat_document, _incontext_document, _sentences_document)
    shares = (config.chat_share, config.incontext_share, config.sentences_share)
    return [rng.choices(makers, weights=shares)[0](rng, config) for _ in range(config.corpus_docs)]


# --- tokenizer -----------------------------------------------------------------------------------

_SPECIAL_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def _number_merges() -> list[tuple[str, str]]:
    """BPE merges that make every integer 0..999 (no leading zeros) exactly one token.

    Each digit run is its own pre-token (at most three digits). For ``abc`` either ``ab`` or
    ``bc`` merges first, depending on ranks, so ``(ab, c)`` is always provided and ``(a, bc)``
    whenever ``bc`` is itself a number; ``a0c`` has no ``0c`` token and always goes via ``a0``.
    """
    merges = [(str(a), str(b)) for a in range(1, 10) for b in range(10)]
    for n in range(100, 1000):
        s = str(n)
        merges.append((s[:2], s[2]))
        if s[1] != "0":
            merges.append((s[0], s[1:]))
    return merges


def _is_digits(token: str) -> bool:
    return token.isascii() and token.isdigit()


def build_tokenizer(
    corpus: Sequence[str], config: TinyConfig = TinyConfig()
) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE on ``corpus`` and wrap it as a ``PreTrainedTokenizerFast``.

    Digit runs are split off before byte-level pre-tokenization and get hand-made merges (see
    :func:`_number_merges`), so numbers tokenize the same wherever they stand; the trained merges
    cover everything else. Specials: ``<|pad|>`` (0), ``<|im_start|>`` (1), ``<|im_end|>`` (2, eos).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=config.bpe_vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # special tokens are split off before pre-tokenization at encode time, so train without them
    pieces = (p for doc in corpus for p in _SPECIAL_RE.split(doc) if p)
    trained.train_from_iterator(pieces, trainer)
    learned = json.loads(trained.to_str())["model"]

    # rebuild: specials first, then the trained non-digit vocab, then every number 0..999
    tokens = list(SPECIAL_TOKENS)
    tokens += [
        t
        for t, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1])
        if not (_is_digits(t) and len(t) > 1)
    ]
    tokens += [str(n) for n in range(10, 1000)]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    # merges serialise as [a, b] pairs (or "a b" strings in older tokenizers versions)
    trained_merges = [m.split(" ") if isinstance(m, str) else m for m in learned["merges"]]
    merges = _number_merges() + [
        (a, b) for a, b in trained_merges if not (_is_digits(a) or _is_digits(b))
    ]

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=config.max_positions,
    )


# --- model and pretraining -----------------------------------------------------------------------


def _pack(
    ids: Sequence[Sequence[int]], seq_len: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
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


def config_key(config: TinyConfig) -> str:
    """Short hash of the config and :data:`FORMAT_VERSION`, naming the cache folder."""
    payload = json.dumps({"format_version": FORMAT_VERSION, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$SPECTRUM_TUNE_CACHE``, else ``~/.cache/spectrum-tune``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "spectrum-tune"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive ``fcntl`` lock, so concurrent processes build a given model only once."""
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
) -> Path:
    """The cached tiny model directory for ``config``, building it (once, under a lock) if missing.

    Load it with ``AutoModelForCausalLM.from_pretrained(path)`` and
    ``AutoTokenizer.from_pretrained(path)``.
    """
    config = config or TinyConfig()
    root = cache_root(cache_dir)
    path = root / f"tiny-{config_key(config)}"
    if (path / INFO_FILE).exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f"{path.name}.lock"):
        if not (path / INFO_FILE).exists():  # another process may have built it meanwhile
            build_tiny_model(path, config, progress=progress)
    return path
