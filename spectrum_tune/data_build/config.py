"""What ``data-build`` takes: the build settings and the teacher specs.

A teacher is written ``MODEL[,key=value...]`` on the command line (``TeacherSpec.parse``):
``MODEL`` is anything :func:`spectrum_tune.models.load_model` resolves (a Hub id, a directory,
an alias such as ``spectrum-tune/smollm2``); the keys are ``prompting`` (``chat``, ``plain`` or
``auto``: chat when the tokenizer has a chat template), ``adapter`` (a PEFT adapter directory),
``gguf`` (the GGUF file of a GGUF directory) and ``name`` (the label used in provenance and the
report; default: the model as written).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpectrumError

__all__ = ["EXTRACT_CHOICES", "WEIGHT_MODES", "DataBuildConfig", "TeacherSpec", "fingerprint"]

PROMPTINGS = ("auto", "chat", "plain")
EXTRACT_CHOICES = ("none", "first_valid", "regex", "last_line")
WEIGHT_MODES = ("counts", "teacher", "uniform")
DEFAULT_JUDGE_PROMPT = (
    "Question: {prompt}\nProposed answer: {answer}\n"
    "Is the proposed answer a valid answer to the question? Answer yes or no."
)


@dataclass(frozen=True)
class TeacherSpec:
    """One teacher (or the judge): a model, how it is prompted, and its label."""

    model: str = field(metadata={"help": "Hub id, directory or alias (spectrum_tune.models)."})
    prompting: str = field(
        default="auto", metadata={"help": "chat | plain | auto (chat if the tokenizer has a chat template)."}
    )
    adapter: str | None = field(default=None, metadata={"help": "PEFT adapter directory on top of model."})
    gguf: str | None = field(default=None, metadata={"help": "GGUF file inside a GGUF model directory."})
    name: str | None = field(default=None, metadata={"help": "Label in provenance and the report."})

    def __post_init__(self) -> None:
        if self.prompting not in PROMPTINGS:
            raise SpectrumError(
                f"teacher '{self.model}': prompting must be one of {', '.join(PROMPTINGS)}, "
                f"not '{self.prompting}'"
            )

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.model if self.adapter is None else f"{self.model}+{Path(self.adapter).name}"

    @classmethod
    def parse(cls, text: str) -> TeacherSpec:
        """``MODEL[,key=value...]`` (module docstring) -> spec; a bad key is a one-line error."""
        model, *pairs = [part.strip() for part in text.split(",")]
        if not model:
            raise SpectrumError(f"teacher '{text}': no model before the options")
        options: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in {"prompting", "adapter", "gguf", "name"} or not value:
                raise SpectrumError(
                    f"teacher '{text}': option '{pair}' is not one of prompting=, adapter=, gguf=, name="
                )
            options[key] = value
        return cls(model=model, **options)


@dataclass
class DataBuildConfig:
    """Everything ``spectrum-tune data-build`` takes (each field is one ``--option``)."""

    data: str = field(metadata={"help": "Prompt rows: a .jsonl/.json/.parquet file or a Hub dataset id."})
    out: Path = field(metadata={"help": "Output directory: rows.jsonl, rejected.jsonl, report.md, cache/."})
    teachers: list[TeacherSpec] = field(default_factory=list, metadata={"help": "One or more teachers."})
    split: str = field(default="train", metadata={"help": "Split of a Hub dataset."})
    prompt_field: str = field(default="prompt", metadata={"help": "Field holding the prompt."})
    seed_references: bool = field(
        default=False,
        metadata={"help": "A row's references are SFT answers that seed it, not a known valid set."},
    )
    samples: int = field(default=32, metadata={"help": "Samples per prompt and teacher (N)."})
    max_new_tokens: int = field(default=16, metadata={"help": "Longest sample, in tokens."})
    stop: list[str] = field(
        default_factory=lambda: ["\n"], metadata={"help": "Stop strings (cut, not kept)."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (1 = the model's own)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus cut (1 = none)."})
    seed: int = field(default=0, metadata={"help": "Base seed; each prompt and teacher gets its own."})
    batch_size: int = field(default=64, metadata={"help": "Rows per generate/score call."})
    plain_format: str = field(
        default="{prompt}", metadata={"help": "Plain-text prompting: the text around the prompt ({prompt})."}
    )
    format_instruction: str | None = field(
        default=None,
        metadata={
            "help": "Appended to each prompt the teachers see (the last user turn of a chat prompt), e.g. "
            "'Answer with just the name.'; the built rows keep the prompt as given."
        },
    )
    extract: str = field(
        default="none",
        metadata={"help": "Answer extraction: none | first_valid | regex | last_line (the eval's rules)."},
    )
    extract_regex: str | None = field(
        default=None, metadata={"help": "With --extract regex: the pattern (its first group if it has one)."}
    )
    classifier: str | None = field(
        default=None,
        metadata={"help": "NoveltyBench equivalence classifier (a path) to merge classes of free text."},
    )
    classifier_threshold: float | None = field(
        default=None, metadata={"help": "Its threshold (default 0.102)."}
    )
    validator: dict[str, Any] | None = field(
        default=None, metadata={"help": "Validator for rows without their own (int_range/regex/one_of_file)."}
    )
    valid_set_filters: bool = field(
        default=False,
        metadata={"help": "A row's known valid set also filters (default: it is only measured)."},
    )
    judge: TeacherSpec | None = field(default=None, metadata={"help": "Judge model asked yes/no per answer."})
    judge_prompt: str = field(
        default=DEFAULT_JUDGE_PROMPT, metadata={"help": "Judge question ({prompt}, {answer})."}
    )
    judge_threshold: float = field(default=0.5, metadata={"help": "Keep answers with P(yes) >= this."})
    agreement: bool = field(
        default=False,
        metadata={"help": "Keep an answer only if seen >= min_count times or by >= min_teachers teachers."},
    )
    min_count: int = field(default=2, metadata={"help": "Agreement: samples an answer needs (m)."})
    min_teachers: int = field(default=2, metadata={"help": "Agreement: teachers that suffice instead."})
    weights: str = field(
        default="counts",
        metadata={
            "help": "counts | teacher (exact probabilities over the kept classes, renormalised) | uniform."
        },
    )
    temper: float = field(
        default=1.0, metadata={"help": "Weights become w^(1/T), renormalised (T > 1 flattens)."}
    )
    max_k: int | None = field(default=None, metadata={"help": "Keep at most K references (the heaviest)."})
    select: int | None = field(
        default=None,
        metadata={
            "help": "Prismatic selection: build prompts in rounds until this many diverse rows are kept."
        },
    )
    select_model: str | None = field(
        default=None, metadata={"help": "Proxy model of the gradient features (default: the first teacher)."}
    )
    select_clusters: int = field(default=8, metadata={"help": "k of the k-means over gradient features."})
    select_batch: int | None = field(
        default=None, metadata={"help": "Prompts built per round (default: --select)."}
    )
    grad_dim: int = field(default=256, metadata={"help": "Projection dimension of the gradient features."})
    lora_rank: int = field(default=8, metadata={"help": "Rank of the gradient LoRA."})
    render: str = field(
        default="multiref",
        metadata={
            "help": "public:NAME rows: multiref (exact targets) or incontext (description + i.i.d. outputs)."
        },
    )
    public_rows: int | None = field(
        default=None,
        metadata={
            "help": "public:NAME: synthetic rows (default 100) or GlobalOpinionQA train questions (all)."
        },
    )
    incontext_outputs: int = field(
        default=16, metadata={"help": "public:NAME --render incontext: outputs per row."}
    )
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda ..."})
    progress: bool = field(default=True, metadata={"help": "Progress bars."})

    @property
    def public(self) -> str | None:
        """The public source of ``data: public:NAME`` (no teacher needed), else None."""
        return self.data[len("public:") :] if str(self.data).startswith("public:") else None

    def check(self) -> None:
        """One-line errors for settings that cannot work together."""
        if self.public is None and not self.teachers:
            raise SpectrumError("data-build needs at least one teacher (--teacher MODEL)")
        labels = [teacher.label for teacher in self.teachers]
        if len(set(labels)) != len(labels):
            raise SpectrumError(f"two teachers share a label ({labels}); give one name=...")
        for name in (
            "samples",
            "max_new_tokens",
            "batch_size",
            "min_count",
            "min_teachers",
            "select_clusters",
            "grad_dim",
            "lora_rank",
        ):
            if getattr(self, name) < 1:
                raise SpectrumError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.extract not in EXTRACT_CHOICES:
            raise SpectrumError(
                f"--extract must be one of {', '.join(EXTRACT_CHOICES)}, not '{self.extract}'"
            )
        if (self.extract == "regex") != (self.extract_regex is not None):
            raise SpectrumError("--extract-regex goes with --extract regex (and only with it)")
        if self.weights not in WEIGHT_MODES:
            raise SpectrumError(f"--weights must be one of {', '.join(WEIGHT_MODES)}, not '{self.weights}'")
        if self.temper <= 0:
            raise SpectrumError(f"--temper must be > 0, got {self.temper}")
        for name in ("max_k", "select", "select_batch", "public_rows"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SpectrumError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.judge_threshold <= 1:
            raise SpectrumError(f"--judge-threshold must be in [0, 1], got {self.judge_threshold}")
        if "{prompt}" not in self.plain_format:
            raise SpectrumError("--plain-format must contain {prompt}")
        for key in ("{prompt}", "{answer}"):
            if key not in self.judge_prompt:
                raise SpectrumError(f"--judge-prompt must contain {key}")


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (cache keys: same inputs and settings, same file)."""

    def plain(value: Any) -> Any:
        return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)

    text = json.dumps(parts, sort_keys=True, default=plain)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
