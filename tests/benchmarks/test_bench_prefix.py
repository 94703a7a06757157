"""benchmarks/bench_prefix.py runs on a real SpectrumTrainer (it once called a method its stand-in lacked)."""

import re
import sys


def test_bench_prefix_smoke_prints_its_summary(monkeypatch, capsys):
    from benchmarks.bench_prefix import main

    argv = [
        "bench_prefix",
        "--hidden",
        "64",
        "--layers",
        "1",
        "--k",
        "4",
        "--groups",
        "2",
        "--ratios",
        "5",
        "--threads",
        "1",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    main()
    out = capsys.readouterr().out
    summary = next(line for line in out.splitlines() if line.startswith("SUMMARY"))
    train, score = (float(x) for x in re.search(r"5:1 train ([\d.]+)x score ([\d.]+)x", summary).groups())
    assert train > 0 and score > 0
