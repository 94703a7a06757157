"""A served model as an eval backend: any OpenAI-compatible endpoint (vLLM, SGLang, hosted APIs).

Sample mode sends a chat prompt to ``/chat/completions`` (the server renders its template) and a
plain-text prompt to ``/completions``, with ``n`` samples per request (the server shares the
prompt's cache across them), the task's temperature / top-p / max tokens / stop strings and, unless
told otherwise, a seed per request. Where the server is vLLM (it answers ``/version``), the knobs
it would otherwise take from the checkpoint's ``generation_config`` (top-k, min-p, repetition
penalty) are sent at their neutral values, as the local sampler does, so both measure the model's
own distribution.

Score mode needs exact prompt log-probs: the groups are tokenised locally with the model's
tokenizer (``--tokenizer``; chat templates rendered locally) and sent as token ids to the
completions endpoint with ``echo`` + ``logprobs`` (what lm-evaluation-harness's
``local-completions`` does); the log-prob of each scored token is the server's. A server that
does not give them (most hosted chat APIs) is refused in one line, never approximated.

Requests run on a bounded thread pool; the ``openai`` client retries 408/409/429/5xx and
connection errors with exponential backoff (honouring ``Retry-After``) and times out. Every
response is stored on disk under the hash of its request (endpoint, model, body), so a killed run
that is started again pays only for what it had not got back. The API key is read from the
environment and never stored: results record the endpoint's host alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import SpectrumError
from ..io import write_json_atomic
from .backends import Backend, SampleRequest, ScoringUnavailable

__all__ = ["ServedBackend", "ServedOptions", "endpoint_host"]

logger = logging.getLogger(__name__)
MAX_STOP = 4  # the OpenAI API takes at most 4 stop strings; the rest are cut here
# vLLM takes these from the checkpoint's generation_config unless a request sets them
VLLM_NEUTRAL = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}


@dataclass
class ServedOptions:
    """How to reach a served model (``spectrum-tune eval --endpoint URL --served-model NAME``)."""

    endpoint: str = field(
        metadata={"help": "base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1"}
    )
    model: str = field(metadata={"help": "the model name the server serves (its /models id)"})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "the served model's tokenizer (directory or Hub id): needed for score mode"},
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "environment variable holding the API key (never written anywhere)"},
    )
    concurrency: int = field(default=8, metadata={"help": "requests in flight at once"})
    timeout: float = field(default=300.0, metadata={"help": "seconds per request before it is retried"})
    max_retries: int = field(default=6, metadata={"help": "retries with backoff on 429/5xx/timeouts"})
    n_per_request: int = field(default=64, metadata={"help": "samples asked for in one request (n)"})
    seed: bool = field(
        default=True, metadata={"help": "send a per-request seed (off for servers that reject it)"}
    )
    cache_dir: Path | None = field(
        default=None,
        metadata={"help": "response cache (default: OUT/served_cache); a rerun reuses every stored response"},
    )


def endpoint_host(url: str) -> str:
    """``host[:port]`` of ``url``: no scheme, credentials, path or query (what results may show)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise SpectrumError(f"--endpoint '{url}' has no host (expected e.g. http://127.0.0.1:8000/v1)")
    return parts.hostname + (f":{parts.port}" if parts.port else "")


def _base_url(url: str) -> str:
    """The API root: ``/v1`` is added to a bare ``scheme://host:port``."""
    url = url if "://" in url else f"http://{url}"
    return url.rstrip("/") + ("/v1" if urlsplit(url).path in ("", "/") else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _cut_text(text: str, stop: Sequence[str]) -> str:
    cuts = [text.index(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


class ServedBackend(Backend):
    """An OpenAI-compatible endpoint: samples from it, exact log-probs where it gives them."""

    kind = "served"

    def __init__(self, options: ServedOptions, cache_dir: Path | None = None) -> None:
        try:
            import openai
        except ImportError as error:
            raise SpectrumError(
                "a served model needs the openai package: pip install 'spectrum-tune[served]'"
            ) from error
        if options.concurrency < 1 or options.n_per_request < 1:
            raise SpectrumError("--concurrency and --n_per_request must be >= 1")
        self.options = options
        self.host = endpoint_host(options.endpoint)
        self.base_url = _base_url(options.endpoint)
        self.cache_dir = options.cache_dir or cache_dir
        self.client = openai.OpenAI(
            base_url=self.base_url,
            # local servers take any key; the variable's value is only ever handed to the client
            api_key=os.environ.get(options.api_key_env) or "EMPTY",
            timeout=options.timeout,
            max_retries=options.max_retries,
        )
        self.server_version = self._server_version()
        self.owned_by = self._check_model()
        self.tokenizer = self._load_tokenizer(options.tokenizer)
        self._score_reason: str | bool | None = False  # False: not probed yet

    # ------------------------------------------------------------------ server facts
    def _server_version(self) -> str | None:
        """vLLM's ``GET /version`` (at the server root); None where the server has none."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        try:  # the stdlib: the route sits outside the API root the client is bound to
            with urllib.request.urlopen(f"{root}/version", timeout=min(10.0, self.options.timeout)) as answer:
                version = json.loads(answer.read()).get("version")
        except Exception:  # no such route, not JSON: the version is simply unknown
            return None
        return str(version) if version else None

    def _check_model(self) -> str | None:
        """Fail fast, in one line, when the endpoint is unreachable or does not serve the model."""
        import openai

        try:
            models = {m.id: m for m in self.client.models.list()}
        except openai.APIConnectionError as error:
            raise SpectrumError(f"cannot reach the endpoint at {self.host}: {_first_line(error)}") from error
        except openai.APIStatusError as error:
            if error.status_code in (401, 403):
                raise SpectrumError(
                    f"{self.host} refused the API key (HTTP {error.status_code}); set "
                    f"${self.options.api_key_env}"
                ) from error
            return None  # some servers have no /models: the first request will tell
        if models and self.options.model not in models:
            served = ", ".join(sorted(models)[:10])
            raise SpectrumError(f"{self.host} does not serve '{self.options.model}' (it serves: {served})")
        found = models.get(self.options.model)
        return getattr(found, "owned_by", None) if found is not None else None

    @staticmethod
    def _load_tokenizer(name: str | None) -> Any:
        if name is None:
            return None
        from ..models import load_tokenizer

        try:
            return load_tokenizer(name)
        except Exception as error:
            raise SpectrumError(f"cannot load --tokenizer '{name}': {_first_line(error)}") from error

    @property
    def is_vllm(self) -> bool:
        return self.server_version is not None

    # ------------------------------------------------------------------ requests + cache
    def _call(self, endpoint: str, body: dict[str, Any], slot: Any = None) -> dict[str, Any]:
        """One request (``endpoint``: "chat" or "completions"), answered from the cache if stored.

        ``slot`` tells apart requests whose bodies are equal but whose answers must not be (two
        unseeded requests for the samples of one item, or of two items with the same prompt).
        """
        key = hashlib.sha256(
            json.dumps(
                {"base": self.base_url, "endpoint": endpoint, "body": body, "slot": slot}, sort_keys=True
            ).encode()
        ).hexdigest()
        path = self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir else None
        if path is not None and path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                pass  # a torn file from a killed writer cannot happen (atomic writes), but never trust it
        standard = {k: v for k, v in body.items() if k != "extra_body"}
        api = self.client.chat.completions if endpoint == "chat" else self.client.completions
        response = api.create(**standard, extra_body=body.get("extra_body")).model_dump(mode="json")
        if path is not None:
            write_json_atomic(path, response)
        return response

    def _sampling_body(self, request: SampleRequest, n: int, chunk: int) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.options.model,
            "n": n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_new_tokens,
        }
        if request.stop:
            body["stop"] = list(request.stop[:MAX_STOP])
        if self.options.seed:
            body["seed"] = (request.seed + chunk * 7919) % 2**31  # each request of an item its own draws
        if self.is_vllm:
            body["extra_body"] = dict(VLLM_NEUTRAL)
        if isinstance(request.prompt, str):
            return "completions", {**body, "prompt": request.prompt}
        if self.is_vllm and self.tokenizer is not None:
            from ..training.chat import chat_layout

            # the template switches the local renderer uses (e.g. Qwen3's enable_thinking=False)
            switches = chat_layout(self.tokenizer).template_kwargs
            if switches:
                body["extra_body"]["chat_template_kwargs"] = dict(switches)
        return "chat", {**body, "messages": request.prompt}

    def _draw(self, request: SampleRequest, n: int, chunk: int) -> list[str]:
        endpoint, body = self._sampling_body(request, n, chunk)
        response = self._call(endpoint, body, slot=[request.seed, chunk])
        choices = sorted(response["choices"], key=lambda choice: choice["index"])
        texts = [c["message"]["content"] or "" if endpoint == "chat" else c["text"] for c in choices]
        if len(texts) != n:
            raise SpectrumError(f"{self.host} returned {len(texts)} choices for n={n}")
        return [_cut_text(text, request.stop) for text in texts]

    def _pool(self, jobs: list[Callable[[], Any]], on_done: Callable[[Any], None] | None = None) -> list[Any]:
        """Run ``jobs`` with at most ``concurrency`` in flight; results in order."""
        results: list[Any] = [None] * len(jobs)
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            futures = {pool.submit(job): index for index, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_done is not None:
                    on_done(results[futures[future]])
        return results

    # ------------------------------------------------------------------ the interface
    def sample_many(
        self, requests: Sequence[SampleRequest], on_batch: Callable[[int], None] | None = None
    ) -> list[list[str]]:
        step = self.options.n_per_request
        plan = [
            (r, k, min(step, request.n - start))
            for r, request in enumerate(requests)
            for k, start in enumerate(range(0, request.n, step))
        ]
        jobs = [lambda r=r, k=k, n=n: self._draw(requests[r], n, k) for r, k, n in plan]
        drawn = self._pool(jobs, None if on_batch is None else lambda texts: on_batch(len(texts)))
        samples: list[list[str]] = [[] for _ in requests]
        for (r, _, _), texts in zip(plan, drawn, strict=True):
            samples[r].extend(texts)
        return samples

    def score_refusal(self) -> str | None:
        """Why this endpoint cannot give exact log-probs (probed once), or None when it can."""
        if self._score_reason is not False:
            return self._score_reason  # type: ignore[return-value]
        if self.tokenizer is None:
            self._score_reason = (
                "score mode on a served model needs --tokenizer (the served model's tokenizer) to "
                "tokenise references exactly as the server does"
            )
            return self._score_reason
        probe = list(self.tokenizer("1 2 3", add_special_tokens=False)["input_ids"]) or [0, 1]
        try:
            self._prompt_logprobs([probe])
            self._score_reason = None
        except Exception as error:
            self._score_reason = (
                f"{self.host} gives no prompt log-probs (completions with echo + logprobs: "
                f"{_first_line(error)}); score mode needs exact log-probs and does not approximate them"
            )
        return self._score_reason

    def _prompt_logprobs(self, sequences: list[list[int]]) -> list[list[float | None]]:
        """The server's log p(token_t | tokens_<t) for every token of every sequence (None first)."""
        body: dict[str, Any] = {
            "model": self.options.model,
            "prompt": sequences,
            "max_tokens": 1,
            "echo": True,
            "logprobs": 1,
            "temperature": 1.0,
            "top_p": 1.0,
        }
        if self.is_vllm:  # token ids instead of strings: lets us check the server scored our tokens
            body["extra_body"] = {"return_tokens_as_token_ids": True}
        response = self._call("completions", body)
        choices = sorted(response["choices"], key=lambda choice: choice["index"])
        if len(choices) != len(sequences):
            raise SpectrumError(f"{self.host} returned {len(choices)} choices for {len(sequences)} prompts")
        scored = []
        for ids, choice in zip(sequences, choices, strict=True):
            logprobs = choice.get("logprobs") or {}
            values, tokens = logprobs.get("token_logprobs"), logprobs.get("tokens") or []
            if not values or len(values) < len(ids):
                raise SpectrumError("the response has no log-probs for the echoed prompt")
            if self.is_vllm and tokens[: len(ids)] != [f"token_id:{t}" for t in ids]:
                raise SpectrumError("the server echoed other tokens than the ones sent")
            scored.append(values[: len(ids)])
        return scored

    def group_logprobs(self, groups: list[dict[str, Any]]) -> list[np.ndarray]:
        reason = self.score_refusal()
        if reason is not None:
            raise ScoringUnavailable(reason)

        def one(group: dict[str, Any]) -> np.ndarray:
            prompt = list(group["prompt_ids"])
            sequences = [prompt + list(c) for c in group["completion_ids"]]
            per_token = self._prompt_logprobs(sequences)
            sums = []
            for values, mask in zip(per_token, group["completion_mask"], strict=True):
                scored = values[len(prompt) :]
                sums.append(sum(float(v) for v, m in zip(scored, mask, strict=True) if m))
            return np.asarray(sums, dtype=np.float64)

        return self._pool([lambda g=g: one(g) for g in groups])

    def describe(self) -> dict[str, Any]:
        """Host (never the key, path or query), model, server version and what was sent."""
        return {
            "kind": self.kind,
            "host": self.host,
            "model": self.options.model,
            "server_version": self.server_version,
            "owned_by": self.owned_by,
            "tokenizer": self.options.tokenizer,
            "n_per_request": self.options.n_per_request,
            "seed_sent": self.options.seed,
            "neutral_sampling_sent": dict(VLLM_NEUTRAL) if self.is_vllm else None,
            "max_stop_strings_sent": MAX_STOP,
            "score": "refused: " + self._score_reason
            if isinstance(self._score_reason, str)
            else "exact (completions echo + logprobs)"
            if self._score_reason is None
            else "not used",
        }
