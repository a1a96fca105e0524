"""A bare FastAPI SSE endpoint: the floor `first_byte.py` compares reelgate's first chunk against."""

import json

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.post("/v1/chat/completions")
async def chat() -> StreamingResponse:
    async def body():  # type: ignore[no-untyped-def]
        chunk = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hello"}}]}
        yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")
