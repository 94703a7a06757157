"""``spectrum-tune validate DATA... [--model M]``: check data files (and token lengths) without training."""

from __future__ import annotations

from .parser import CommandParser


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="spectrum-tune validate")
    parser.add_argument("data", nargs="+", help="data files (.jsonl/.json/.parquet)")
    parser.add_argument("--model", help="tokenizer to check token lengths with (directory, Hub id or alias)")
    parser.add_argument("--gguf_file", help="GGUF file inside the --model directory (aliases imply theirs)")
    parser.add_argument("--max_length", type=int, default=1024)
    args = parser.parse_args(argv)
    from ..training.data import load_multiref
    from ..training.tokenize import tokenize_group

    dataset = load_multiref(args.data)
    counts = [len(refs) for refs in dataset["references"]]
    if args.model:
        from ..models import load_tokenizer

        tokenizer = load_tokenizer(args.model, gguf_file=args.gguf_file)
        for row in dataset:
            tokenize_group(row, tokenizer, args.max_length)
    print(
        f"ok: {len(dataset)} groups, {sum(counts)} references "
        f"({sum(c > 1 for c in counts)} multi-reference groups)"
    )
    return 0
