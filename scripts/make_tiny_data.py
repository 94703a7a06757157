"""Generate the tiny world's tuning files from data/tiny/splits.yaml (train entries only).

    python scripts/make_tiny_data.py            # rewrites data/tiny/train-*.jsonl

Deterministic given the seed in splits.yaml. Files written:
  train-multiref.jsonl   one row per prompt: every valid answer with its target weight
  train-sft.jsonl        the same prompts, one answer each (drawn from the target), as
                         ordinary instruction data looks
  train-iid.jsonl        the same prompts, K single-answer rows each, i.i.d. from the target
                         (K = the prompt's number of valid answers, so compute matches)
  train-incontext.jsonl  in-context sequences of i.i.d. outputs (the Spectrum Tuning format)
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spectrum_tune import world  # noqa: E402

DATA = ROOT / "data" / "tiny"


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def open_tasks(splits: dict) -> list[tuple[str, dict[str, float], str]]:
    """(prompt, target, in-context description) for every tuning prompt with several answers."""
    tasks = []
    for a, b in splits["numbers"]["train"]:
        target = world.uniform_distribution([str(n) for n in range(a, b + 1)])
        tasks.append((world.pick_number_prompt(a, b), target, world.numbers_description(a, b)))
    for category in splits["categories"]["train"]:
        target = world.uniform_distribution(world.CATEGORIES[category])
        tasks.append((world.name_a_prompt(category), target, world.names_description(category)))
    for p in splits["coins"]["train"]:
        tasks.append((world.coin_prompt(p), world.coin_target(p), world.coin_description(p)))
    for percents in splits["dice"]["train"]:
        tasks.append((world.die_prompt(percents), world.die_target(percents), None))
    for counts in splits["urns"]["train"]:
        tasks.append((world.urn_prompt(counts), world.urn_target(counts), world.urn_description(counts)))
    return tasks


def closed_tasks(splits: dict, rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(prompt, answer) pairs for tuning and for the held-out accuracy task."""
    closed = splits["closed"]
    pairs = [(x, y) for x in range(20) for y in range(20) if x + y < 20]
    rng.shuffle(pairs)
    held = closed["arithmetic_heldout"]
    heldout_pairs, train_pairs = pairs[:held], pairs[held : held + closed["arithmetic_train"]]
    countries = list(world.COUNTRIES)
    cut = round(len(countries) * (1 - closed["capitals_heldout_share"]))

    def build(pairs_, days, countries_):
        return (
            [(world.arithmetic_prompt(x, y), str(x + y)) for x, y in pairs_]
            + [(world.next_weekday_prompt(d), world.next_weekday(d)) for d in days]
            + [(world.capital_prompt(c), world.CAPITALS[c]) for c in countries_]
        )

    return (
        build(train_pairs, closed["weekday_train"], countries[:cut]),
        build(heldout_pairs, closed["weekday_heldout"], countries[cut:]),
    )


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
    for prompt, target, description in tasks:
        answers, weights = list(target), list(target.values())
        multiref.append({"prompt": chat(prompt), "references": answers, "weights": weights})
        sft.append({"prompt": chat(prompt), "references": rng.choices(answers, weights)})
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
