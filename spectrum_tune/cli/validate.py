"""``spectrum-tune validate DATA... [--model M]``: check data files (and token lengths) without training."""

from __future__ import annotations

from .parser import CommandParser


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="spectrum-tune validate")
    parser.add_argument("data", nargs="+", help="data files (.jsonl/.json/.parquet)")
    parser.add_argument("--model", help="tokenizer to check token lengths with (directory, Hub id or alias)")
    parser.add_argument("--gguf_file", help="GGUF file inside the --model directory (aliases imply theirs)")
    parser.add_argument("--max_length", type=int, default=1024)
    parser.add_argument(
        "--dataset_text_field",
        default="text",
        help="the text column of TRL text rows, as in the recipe (default: text)",
    )
    args = parser.parse_args(argv)
    from ..training.formats import load_training_dataset
    from ..training.tokenize import tokenize_group

    data = load_training_dataset(args.data, text_field=args.dataset_text_field)
    counts = [len(row["references"]) for row in data.groups]
    single = data.single_rows
    if args.model:
        from ..models import load_tokenizer

        tokenizer = load_tokenizer(args.model, gguf_file=args.gguf_file)
        for row in data.groups:
            tokenize_group(row, tokenizer, args.max_length)
    trl_rows = f", {single} TRL single-target rows (prepared as SFTTrainer does)" if single else ""
    print(
        f"ok: {len(counts)} groups, {sum(counts)} references "
        f"({sum(c > 1 for c in counts)} multi-reference groups){trl_rows}"
    )
    return 0
