"""A small OpenAI-compatible server over the local backend: a test fixture, run as its own process.

    python tests/evaluation/openai_server.py --model DIR --port_file F

It speaks the standard API shapes (``GET /v1/models``, ``POST /v1/completions`` with a string or
token-id prompt, ``n``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``, ``echo`` +
``logprobs``; ``POST /v1/chat/completions``), so the served backend's client is tested over real
HTTP against a real process. It is a fixture, not a product: serving is vLLM's / SGLang's job,
and this one has no batching across requests. It serves the model under two names: ``tiny``, and
``tiny-hosted``, which answers like a hosted chat API (no prompt log-probs).
``POST /fixture/fail_next {"count": K}`` makes the next K generation requests answer HTTP 429
(the client's retries); ``GET /fixture/stats`` counts the requests that reached it. It binds
127.0.0.1 only and stops by itself after ``--idle_timeout`` seconds without a request or
``--max_requests`` requests.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from spectrum_tune.evaluation.runner import load_for_eval
from spectrum_tune.evaluation.sample import generate_samples


def _token_logprobs(model, ids: list[int]) -> list[float | None]:
    """log p(token_t | tokens_<t) of every token (None for the first), float32 log-softmax."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    scored = logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return [None, *scored.tolist()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", default="tiny")
    parser.add_argument("--port_file", type=Path, required=True)
    parser.add_argument("--idle_timeout", type=float, default=60.0)
    parser.add_argument("--max_requests", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_for_eval(args.model)
    lock = threading.Lock()
    state = {
        "requests": 0,
        "generation_requests": 0,
        "rate_limited": 0,
        "fail_next": 0,
        "last": time.monotonic(),
    }

    def sample(prompt, body: dict) -> list[str]:
        return generate_samples(
            model,
            tokenizer,
            prompt,
            int(body.get("n", 1)),
            max_new_tokens=int(body.get("max_tokens", 16)),
            stop=body.get("stop") or (),
            seed=int(body.get("seed", 0)),
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
        )

    def completions(body: dict) -> dict:
        prompts = body["prompt"]
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        choices = []
        for prompt in prompts:
            if body.get("echo"):
                if body["model"] != args.name:
                    raise ValueError("echo is not supported")
                ids = prompt if isinstance(prompt, list) else tokenizer(prompt)["input_ids"]
                tokens = [tokenizer.decode([t]) for t in ids]
                logprobs = {
                    "tokens": tokens,
                    "token_logprobs": _token_logprobs(model, list(ids)),
                    "top_logprobs": None,
                    "text_offset": None,
                }
                choices.append(
                    {
                        "index": len(choices),
                        "text": tokenizer.decode(ids),
                        "logprobs": logprobs,
                        "finish_reason": "length",
                    }
                )
                continue
            text = prompt if isinstance(prompt, str) else tokenizer.decode(prompt)
            for sample_text in sample(text, body):
                choices.append(
                    {"index": len(choices), "text": sample_text, "logprobs": None, "finish_reason": "stop"}
                )
        return {
            "id": "cmpl-fixture",
            "object": "text_completion",
            "created": int(time.time()),
            "model": args.name,
            "choices": choices,
        }

    def chat(body: dict) -> dict:
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            for i, text in enumerate(sample(body["messages"], body))
        ]
        return {
            "id": "chat-fixture",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": args.name,
            "choices": choices,
        }

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:  # quiet
            return

        def do_GET(self) -> None:
            state["last"] = time.monotonic()
            if self.path == "/fixture/stats":  # what the tests count (requests that reached us)
                self._send(200, {k: v for k, v in state.items() if k != "last"})
            elif self.path == "/v1/models":
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": name, "object": "model", "created": 0, "owned_by": "fixture"}
                            for name in (args.name, f"{args.name}-hosted")
                        ],
                    },
                )
            else:
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            state["last"] = time.monotonic()
            state["requests"] += 1
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/fixture/fail_next":
                state["fail_next"] = int(body["count"])
                self._send(200, {})
                return
            routes = {"/v1/completions": completions, "/v1/chat/completions": chat}
            if self.path not in routes:
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            if not body.get("echo") and state["fail_next"] > 0:
                state["fail_next"] -= 1
                state["rate_limited"] += 1
                self._send(429, {"error": {"message": "rate limited (fixture)", "type": "rate_limit"}})
                return
            state["generation_requests"] += not body.get("echo")
            try:
                with lock:
                    payload = routes[self.path](body)
            except (KeyError, ValueError, TypeError) as error:
                self._send(400, {"error": {"message": str(error), "type": "invalid_request_error"}})
                return
            self._send(200, payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(args.port_file)  # the test polls for the file: it appears whole

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            idle = time.monotonic() - state["last"] > args.idle_timeout
            if idle or state["requests"] >= args.max_requests:
                server.shutdown()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
