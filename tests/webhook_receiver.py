"""A webhook receiver on loopback for tests: records every request and answers from a script of statuses."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    url: str
    #: Statuses to answer in turn (with their extra headers); 200 once the list is used up.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, within: float = 30) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


async def _serve(receiver: Receiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        receiver.received.append(Received(headers, body))
        receiver.arrived.set()
        status, extra = receiver.script.pop(0) if receiver.script else (200, {})
        more = "".join(f"{name}: {value}\r\n" for name, value in extra.items())
        writer.write(f"HTTP/1.1 {status} X\r\n{more}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the sender went away (a server stopping mid-send): nothing was delivered
    finally:
        writer.close()


@asynccontextmanager
async def receiver(script: list[tuple[int, dict[str, str]]] | None = None) -> AsyncIterator[Receiver]:
    """A receiver in the running event loop."""
    found = Receiver("", list(script or []))
    server = await asyncio.start_server(lambda r, w: _serve(found, r, w), "127.0.0.1", 0)
    found.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


@contextmanager
def receiver_thread(script: list[tuple[int, dict[str, str]]] | None = None) -> Iterator[Receiver]:
    """A receiver in a thread of its own, for synchronous (e2e) tests."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: list[Receiver] = []
    stop = asyncio.Event()

    async def run() -> None:
        async with receiver(script) as found:
            holder.append(found)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
