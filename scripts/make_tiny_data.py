"""Generate the tiny world's tuning files from data/tiny/splits.yaml (train entries only).

    python scripts/make_tiny_data.py            # rewrites data/tiny/train-*.jsonl

Deterministic given the seed in splits.yaml. Files written:
  train-multiref.jsonl   one row per prompt: every valid answer with its target weight
  train-sft.jsonl        the same prompts, one answer each, as ordinary instruction data looks:
                         the answer a model of this world gives most often (its corpus mode:
                         7, blue, California, the first listed option), or the right answer
                         for closed questions
  train-iid.jsonl        the same prompts, K single-answer rows each, i.i.d. from the target
                         (K = the prompt's number of valid answers, so compute matches)
  train-incontext.jsonl  in-context sequences of i.i.d. outputs (the Spectrum Tuning format)
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spectrum_tune.world import facts as world  # noqa: E402

DATA = ROOT / "data" / "tiny"


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


class OpenTask(NamedTuple):
    prompt: str
    target: dict[str, float]
    description: str | None
    typical: str
    """The answer the world's corpus gives most often (what single-answer data would hold)."""


def _mode(distribution: dict[str, float]) -> str:
    return max(distribution, key=distribution.__getitem__)


def open_tasks(splits: dict, which: dict[str, str] | None = None) -> list[OpenTask]:
    """Every open prompt of one split, with its target, in-context description and typical answer.

    ``which`` maps a family (numbers, categories, coins, dice, urns) to the splits.yaml key to
    read; by default every family's ``train`` entries. Families missing from ``which`` are
    skipped, so scripts/make_eval_tasks.py can build held-out tasks family by family.
    """
    which = which or dict.fromkeys(("numbers", "categories", "coins", "dice", "urns"), "train")

    def entries(family: str) -> list:
        return splits[family][which[family]] if family in which else []

    tasks = []
    for a, b in entries("numbers"):
        target = world.uniform_distribution([str(n) for n in range(a, b + 1)])
        tasks.append(
            OpenTask(
                world.pick_number_prompt(a, b),
                target,
                world.numbers_description(a, b),
                _mode(world.biased_number_distribution(a, b)),
            )
        )
    for category in entries("categories"):
        target = world.uniform_distribution(world.CATEGORIES[category])
        tasks.append(
            OpenTask(
                world.name_a_prompt(category),
                target,
                world.names_description(category),
                _mode(world.biased_distribution(category)),
            )
        )
    stated = [
        (world.coin_prompt(p), world.coin_target(p), world.coin_description(p)) for p in entries("coins")
    ]
    stated += [(world.die_prompt(pc), world.die_target(pc), None) for pc in entries("dice")]
    stated += [(world.urn_prompt(c), world.urn_target(c), world.urn_description(c)) for c in entries("urns")]
    for prompt, target, description in stated:
        typical = _mode(world.corpus_stated_distribution(target))
        tasks.append(OpenTask(prompt, target, description, typical))
    return tasks


def closed_families(
    splits: dict, rng: random.Random
) -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """Per closed family (arithmetic, next_weekday, capitals): (tuning pairs, held-out pairs)."""
    closed = splits["closed"]
    pairs = [(x, y) for x in range(20) for y in range(20) if x + y < 20]
    rng.shuffle(pairs)
    held = closed["arithmetic_heldout"]
    heldout_pairs, train_pairs = pairs[:held], pairs[held : held + closed["arithmetic_train"]]
    countries = list(world.COUNTRIES)
    cut = round(len(countries) * (1 - closed["capitals_heldout_share"]))

    def sums(pairs_):
        return [(world.arithmetic_prompt(x, y), str(x + y)) for x, y in pairs_]

    def days(days_):
        return [(world.next_weekday_prompt(d), world.next_weekday(d)) for d in days_]

    def capitals(countries_):
        return [(world.capital_prompt(c), world.CAPITALS[c]) for c in countries_]

    return {
        "arithmetic": (sums(train_pairs), sums(heldout_pairs)),
        "next_weekday": (days(closed["weekday_train"]), days(closed["weekday_heldout"])),
        "capitals": (capitals(countries[:cut]), capitals(countries[cut:])),
    }


def closed_tasks(splits: dict, rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(prompt, answer) pairs for tuning and for the held-out accuracy task."""
    families = closed_families(splits, rng).values()
    return [p for train, _ in families for p in train], [p for _, held in families for p in held]


def check_widths(splits: dict) -> None:
    seen = {b - a for a, b in splits["numbers"]["train"]}
    for a, b in splits["numbers"]["heldout_new_widths"]:
        if b - a in seen:
            raise SystemExit(f"held-out range [{a}, {b}] has width {b - a}, which tuning uses")
    held = {tuple(r) for key in ("heldout_seen_widths", "heldout_new_widths") for r in splits["numbers"][key]}
    if held & {tuple(r) for r in splits["numbers"]["train"]}:
        raise SystemExit("a held-out range is also a tuning range")


def write_jsonl(name: str, rows: list[dict]) -> None:
    path = DATA / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(rows)} rows")


def main() -> None:
    splits = yaml.safe_load((DATA / "splits.yaml").read_text())
    check_widths(splits)
    rng = random.Random(splits["seed"])
    tasks = open_tasks(splits)
    closed_train, _ = closed_tasks(splits, rng)

    multiref, sft, iid, incontext = [], [], [], []
    for prompt, target, description, typical in tasks:
        answers, weights = list(target), list(target.values())
        multiref.append({"prompt": chat(prompt), "references": answers, "weights": weights})
        sft.append({"prompt": chat(prompt), "references": [typical]})
        iid.extend(
            {"prompt": chat(prompt), "references": [draw]}
            for draw in rng.choices(answers, weights, k=len(answers))
        )
        for _ in range(splits["incontext"]["per_task"]):
            count = max(2, round(rng.expovariate(1 / splits["incontext"]["examples_mean"])))
            row = {"outputs": rng.choices(answers, weights, k=count)}
            if description and rng.random() < 0.6:
                row["description"] = description
            elif count < 2:
                row["outputs"].append(rng.choices(answers, weights)[0])
            incontext.append(row)
    for prompt, answer in closed_train:
        row = {"prompt": chat(prompt), "references": [answer]}
        multiref.append(row)
        sft.append(row)
        iid.append(row)
    write_jsonl("train-multiref.jsonl", multiref)
    write_jsonl("train-sft.jsonl", sft)
    write_jsonl("train-iid.jsonl", iid)
    write_jsonl("train-incontext.jsonl", incontext)


if __name__ == "__main__":
    main()
