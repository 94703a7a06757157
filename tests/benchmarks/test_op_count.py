"""benchmarks/op_count.py counts a step's operators; the two-pass path (more chunks) costs more of them."""


def test_two_pass_chunks_add_operators():
    from benchmarks.op_count import main

    results = main(
        [
            "--k",
            "4",
            "--groups",
            "2",
            "--prompt",
            "8",
            "--output",
            "3",
            "--layers",
            "2",
            "--hidden",
            "32",
            "--chunk",
            "2",
        ]
    )
    ops = {(r["arm"], r["chunk"]): r["ops"] for r in results}
    assert set(ops) == {("sft", 2), ("spectrum", 2), ("spectrum", 8), ("spectrum-naive", 8)}
    assert all(count > 0 for count in ops.values())
    assert ops[("spectrum", 2)] > ops[("spectrum", 8)]  # 4 chunks, two passes vs one chunk
