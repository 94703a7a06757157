"""benchmarks/gpu.py keeps working without a GPU: its smoke sizes run on CPU and print the table."""

import re


def test_gpu_benchmark_smoke_prints_every_row(capsys):
    from benchmarks.gpu import main

    main(["--smoke"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "measurement" not in line]
    labels = [row.split(" | ")[0] for row in rows]
    assert len(rows) == 5, out
    assert any("spectrum vs SFTTrainer, K=4" in label for label in labels)
    assert any("GEM vs NLL" in label for label in labels) and any("QLoRA" in label for label in labels)
    assert any("eval sample" in label for label in labels)
    for row in rows:  # every result is a finite, positive ratio
        ratio = float(re.search(r"(\d+\.\d+)x", row).group(1))
        assert 0 < ratio < 1000, row
