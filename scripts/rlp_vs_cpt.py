"""Tiny-world comparison: RLP vs continued pretraining (CPT) with the ordinary loss on the same text,
then the same post-training (SFT), per seed.

    nice -n 10 python scripts/rlp_vs_cpt.py --seeds 0 1 2 --out runs/rlp-vs-cpt

Arms, each from the tiny model:
* ``rlp``: GRPO with :class:`~spectrum_tune.rl.information_gain.InformationGainReward` (EMA baseline)
  on the rows of data/tiny/rlp-text.txt (12 words of context, 4 of continuation), ``--steps`` steps of
  ``--prefixes`` prefixes x ``--thoughts`` thoughts, full weights;
* ``cpt``: the ordinary next-token loss on the same rows (context + continuation as one text), the
  same steps, prefixes per step, optimizer (AdamW) and learning rate;
* ``base``: no continued pretraining.
Then each arm gets the same SFT (recipes/tiny-sft.yaml, ``--sft_steps`` steps, LoRA) and is evaluated on
the tiny world's held-out closed questions (suite ``accuracy``, split ``heldout``, score mode: the
probability of the right answer) and on continuation likelihood: the mean per-token log-probability of
the 4-word continuations of held-out text (world sentences drawn with seed 202, not in the training
text), measured after continued pretraining and again after SFT (adapter on). Same text, same steps
and rows per step; RLP spends more compute per step (it samples thoughts), and the wall seconds of each
arm are written beside its numbers. Results: ``OUT/results.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = REPO / "data" / "tiny" / "rlp-text.txt"
CONTEXT_WORDS, CONTINUATION_WORDS = 12, 4


def heldout_rows(count: int = 150) -> list[dict[str, str]]:
    from spectrum_tune.rl.information_gain import text_rows
    from spectrum_tune.world.corpus import TinyConfig, _sentences_document

    rng = random.Random(202)
    docs = [_sentences_document(rng, TinyConfig()).strip() for _ in range(count)]
    return text_rows(docs, CONTEXT_WORDS, CONTINUATION_WORDS)


def continuation_loglik(model, tokenizer, rows) -> float:
    """Mean per-token log p(continuation | context) over held-out rows."""
    from spectrum_tune.rl.information_gain import continuation_logprobs

    contexts = [tokenizer(row["prompt"])["input_ids"] for row in rows]
    targets = [tokenizer(row["continuation"], add_special_tokens=False)["input_ids"] for row in rows]
    logprobs = continuation_logprobs(model, contexts, targets, tokenizer.pad_token_id or 0, batch_size=32)
    return sum(map(sum, logprobs)) / sum(map(len, logprobs))


def train_rlp(base: Path, rows, out: Path, args, seed: int) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    from spectrum_tune.rl.config import GRPOConfig
    from spectrum_tune.rl.information_gain import InformationGainReward

    model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    reward = InformationGainReward(baseline="ema", ema_decay=args.ema_decay)
    config = GRPOConfig(
        output_dir=str(out / "trainer"),
        per_device_train_batch_size=args.prefixes * args.thoughts,
        num_generations=args.thoughts,
        max_completion_length=8,
        temperature=1.0,
        beta=0.0,
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=seed,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[reward.callback],
    )
    trainer.train()
    rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    (out / "rewards.json").write_text(json.dumps(rewards))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def train_cpt(base: Path, rows, out: Path, args, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    # as the Trainer under GRPO: AdamW without weight decay, gradients clipped at norm 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    model.train()
    for step in range(args.cpt_steps or args.steps):
        batch = [rows[order[(step * args.prefixes + i) % len(rows)]] for i in range(args.prefixes)]
        texts = [row["prompt"] + row["continuation"] for row in batch]
        encoded = tokenizer(texts, return_tensors="pt", padding=True)
        labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
        loss = model(**encoded, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def post_train_and_eval(model_dir: Path, out: Path, args, seed: int, heldout) -> dict[str, float]:
    from transformers import AutoTokenizer

    from spectrum_tune.cli import main
    from spectrum_tune.evaluation.runner import load_for_eval

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model, _ = load_for_eval(str(model_dir))
    before = continuation_loglik(model, tokenizer, heldout)
    sft = out / "sft"
    assert (
        main(
            [
                "train",
                "--config",
                str(REPO / "recipes" / "tiny-sft.yaml"),
                "--model_name_or_path",
                str(model_dir),
                "--output_dir",
                str(sft),
                "--max_steps",
                str(args.sft_steps),
                "--seed",
                str(seed),
                "--disable_tqdm",
                "true",
                "--overwrite_output_dir",
                "true",
            ]
        )
        == 0
    )
    model, _ = load_for_eval(str(model_dir), adapter=str(sft))
    after = continuation_loglik(model, tokenizer, heldout)
    assert (
        main(
            [
                "eval",
                "--model",
                str(model_dir),
                "--adapter",
                str(sft),
                "--tasks",
                "accuracy",
                "--split",
                "heldout",
                "--mode",
                "score",
                "--no_progress",
                "--out",
                str(out / "eval"),
            ]
        )
        == 0
    )
    results = json.loads((out / "eval" / "results.json").read_text())
    score = results["summary"]["overall"]["score"]
    return {
        "continuation_loglik_after_cpt": before,
        "continuation_loglik_after_sft": after,
        "closed_answer_prob": score["answer_prob"],
        "closed_answer_logprob": score["answer_logprob"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--prefixes", type=int, default=4)
    parser.add_argument("--thoughts", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--ema_decay", type=float, default=0.9)
    parser.add_argument("--sft_steps", type=int, default=60)
    parser.add_argument("--cpt_steps", type=int, help="CPT steps (default: --steps)")
    parser.add_argument("--arms", nargs="+", default=["base", "cpt", "rlp"], choices=["base", "cpt", "rlp"])
    parser.add_argument("--out", type=Path, default=Path("runs/rlp-vs-cpt"))
    parser.add_argument("--base", type=Path, help="the starting model directory (default: the tiny model)")
    args = parser.parse_args()

    import torch

    from spectrum_tune.rl.information_gain import text_rows
    from spectrum_tune.world import tiny_model_path

    torch.set_num_threads(1)
    base = args.base or tiny_model_path()
    rows = text_rows(TEXT, CONTEXT_WORDS, CONTINUATION_WORDS)
    heldout = heldout_rows()
    results: dict[str, dict[str, dict[str, float]]] = {arm: {} for arm in args.arms}
    for seed in args.seeds:
        for arm in results:
            out = args.out / f"seed{seed}" / arm
            out.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            model_dir = base
            if arm != "base":
                model_dir = out / "model"
                (train_rlp if arm == "rlp" else train_cpt)(base, rows, model_dir, args, seed)
            seconds = time.perf_counter() - started
            numbers = post_train_and_eval(model_dir, out, args, seed, heldout)
            results[arm][str(seed)] = {**numbers, "continued_pretraining_seconds": seconds}
            print(arm, seed, json.dumps(results[arm][str(seed)]), flush=True)
            summary = {
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "train_rows": len(rows),
                "heldout_rows": len(heldout),
                "results": results,
            }
            (args.out / "results.json").write_text(json.dumps(summary, indent=1))
    keys = [
        "closed_answer_prob",
        "continuation_loglik_after_cpt",
        "continuation_loglik_after_sft",
        "continued_pretraining_seconds",
    ]
    print("| arm | " + " | ".join(keys) + " |")
    for arm, per_seed in results.items():
        cells = []
        for key in keys:
            values = [entry[key] for entry in per_seed.values()]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        print(f"| {arm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
