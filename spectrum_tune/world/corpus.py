"""The tiny world's corpus: the model config, the ChatML format and the biased documents.

The corpus answers open prompts with a deliberate bias (see :mod:`spectrum_tune.world.facts`) so
that the base model shows mode collapse that tuning has to fix. Plain Python, no torch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from . import facts as world

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
