"""A fast fake OpenAI-compatible server (vLLM's token-id extensions included) for tests and benchmarks.

It answers every chat or text completion with the same few words, their token ids (one per word) and
logprobs, after an optional fixed delay. Run it with `python -m testing.fake_upstream --port 8100`.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson

WORDS = ["Hello", " from", " the", " fake", " upstream", "."]
TOKEN_IDS = [101 + i for i in range(len(WORDS))]
MODEL = "fake-model"


def completion_body(doc: dict, chat: bool) -> dict:
    n = int(doc.get("n") or 1)
    max_tokens = int(doc.get("max_tokens") or doc.get("max_completion_tokens") or len(WORDS))
    words, ids = WORDS[:max_tokens], TOKEN_IDS[:max_tokens]
    text = "".join(words)
    prompt_ids = [7] * (len(doc.get("messages") or ()) or 1)
    choices = []
    for i in range(n):
        choice: dict = {"index": i, "finish_reason": "stop" if max_tokens >= len(WORDS) else "length"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
            choice["logprobs"] = {"content": [{"token": w, "logprob": -0.5, "top_logprobs": []} for w in words]} if doc.get("logprobs") else None
        else:
            choice["text"] = text
            choice["logprobs"] = {"token_logprobs": [-0.5] * len(words), "tokens": words} if doc.get("logprobs") is not None else None
        if doc.get("return_token_ids"):
            choice["token_ids"] = ids
        choices.append(choice)
    body = {"id": "fake-1", "object": "chat.completion" if chat else "text_completion", "created": int(time.time()), "model": MODEL,
            "choices": choices, "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": n * len(ids), "total_tokens": len(prompt_ids) + n * len(ids)}}
    if doc.get("return_token_ids"):
        body["prompt_token_ids"] = prompt_ids
    return body


def make_app(delay_s: float = 0.0):
    models = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake", "max_model_len": 2048}]})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        status, out = 200, models
        if path.endswith("/completions"):
            doc = orjson.loads(body)
            if delay_s:
                await asyncio.sleep(delay_s)
            out = orjson.dumps(completion_body(doc, chat=path.endswith("/chat/completions")))
        elif not path.endswith("/models"):
            status, out = 404, b'{"error": {"message": "not found"}}'
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(make_app(args.delay_ms / 1000), host=args.host, port=args.port, log_level="warning", access_log=False,
                http="httptools", loop="uvloop")


if __name__ == "__main__":
    main()
