"""Benchmark loaders on local fixtures of the real schemas (load_dataset(hub_id) -> tests/fixtures)."""

from pathlib import Path

import numpy as np
import pytest

from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.benchmarks import is_benchmark, load_benchmark
from spectrum_tune.evaluation.benchmarks.global_opinions import parse_selections
from spectrum_tune.evaluation.tasks import resolve_tasks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
LOCAL = {
    ("yimingzhang/novelty-bench", "curated"): ("json", "novelty-bench-curated.jsonl"),
    ("yimingzhang/novelty-bench", "wildchat"): ("json", "novelty-bench-wildchat.jsonl"),
    ("liweijiang/infinite-chats-eval", "train"): ("json", "infinite-chats-eval.jsonl"),
    ("Anthropic/llm_global_opinions", "train"): ("csv", "llm_global_opinions.csv"),
}


@pytest.fixture
def hub_calls(monkeypatch, tmp_path):
    """Point datasets.load_dataset(hub_id, split=...) at the local fixture of the same schema."""
    import datasets

    real = datasets.load_dataset
    calls = []

    def local(hub_id, split=None, **kwargs):
        calls.append((hub_id, split))
        builder, name = LOCAL[(hub_id, split)]
        return real(builder, data_files=str(FIXTURES / name), split="train", cache_dir=str(tmp_path))

    monkeypatch.setattr(datasets, "load_dataset", local)
    return calls


def test_noveltybench_curated_and_wildchat(hub_calls):
    (curated,) = load_benchmark("noveltybench")
    (wildchat,) = load_benchmark("hub:yimingzhang/novelty-bench:split=wildchat")
    assert hub_calls == [("yimingzhang/novelty-bench", "curated"), ("yimingzhang/novelty-bench", "wildchat")]
    assert curated.name == "noveltybench_curated" and curated.kind == "freetext" and curated.samples == 10
    assert curated.items[0].prompt == [
        {"role": "user", "content": "Tell me a story in five sentences about a girl and her dog."}
    ]
    assert curated.stop == [] and len(wildchat.items) == 1


def test_infinity_chat_queries(hub_calls):
    (task,) = resolve_tasks(["infinity_chat:max_items=1"])
    assert hub_calls == [("liweijiang/infinite-chats-eval", "train")]
    assert task.name == "infinity_chat" and len(task.items) == 1 and task.items[0].is_freetext


def test_globalopinionqa_pooled_and_country(hub_calls):
    (pooled,) = load_benchmark("globalopinionqa")
    # row 3 has no question (skipped); Peru's shares do not match the 3 options (dropped)
    assert len(pooled.items) == 2 and pooled.kind == "distribution"
    first, second = pooled.items
    assert first.references == ["A", "B"]
    assert np.allclose(first.weights, [0.4, 0.6])  # mean of Belgium [.6, .4] and Japan [.2, .8]
    assert np.allclose(second.weights, [0.4, 0.25, 0.35])
    assert "B. Disagree" in first.prompt[0]["content"]
    (japan,) = load_benchmark("globalopinionqa:country=Japan")
    assert np.allclose(japan.items[1].weights, [0.1, 0.3, 0.6])


def test_globalopinionqa_steerable_pairs_share_targets(hub_calls):
    steered, unsteered = load_benchmark("globalopinionqa_steer")
    assert [t.name for t in (steered, unsteered)] == ["globalopinionqa_steered", "globalopinionqa_unsteered"]
    assert len(steered.items) == len(unsteered.items) == 4  # Belgium, Japan; Japan, Nigeria
    for a, b in zip(steered.items, unsteered.items, strict=True):
        assert a.weights == b.weights
    assert "someone from Nigeria" in steered.items[3].prompt[0]["content"]
    assert "Nigeria" not in unsteered.items[3].prompt[0]["content"]


def test_selections_parse_and_errors():
    text = "defaultdict(<class 'list'>, {'Belgium': [0.6, 0.4]})"
    assert parse_selections(text, "row") == {"Belgium": [0.6, 0.4]}
    with pytest.raises(SpectrumError, match="selections"):
        parse_selections("nothing", "row")
    assert is_benchmark("hub:x/y") and is_benchmark("noveltybench") and not is_benchmark("spread")
    with pytest.raises(SpectrumError, match="unknown benchmark Hub id"):
        load_benchmark("hub:someone/else")
    with pytest.raises(SpectrumError, match="bad option"):
        load_benchmark("noveltybench:colour=red")


def test_diverse_valid_task_files_load():
    tasks = {t.name: t for t in resolve_tasks(["benchmarks"])}
    assert {"rng_1_10", "rng_1_100", "us_states_full_names", "weekdays_full"} <= set(tasks)
    assert all(t.published for t in tasks.values())
    assert len(tasks["weekdays_full"].items[0].references) == 21
    assert len(tasks["us_states_full_names"].items[0].references) == 50
    assert tasks["rng_1_100"].items[0].validator.kind == "int_range"
