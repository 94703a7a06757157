"""benchmarks/bench_sample.py keeps working: one item, a few samples, on the tiny model."""

import re


def test_bench_sample_prints_a_ratio_and_identical_draws(tiny_model_dir, capsys):
    from benchmarks.bench_sample import main

    main(["--items", "1", "--samples", "4", "--threads", "1", "--max-new-tokens", "3"])
    out = capsys.readouterr().out
    assert "identical draws: yes" in out, out
    ratio = float(re.search(r"SUMMARY .* n=4 (\d+\.\d+)x", out).group(1))
    assert 0 < ratio < 1000, out
