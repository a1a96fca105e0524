"""A burst of connections is taken from the port's backlog several a turn of the event loop, not one.

uvloop's libuv accepts one connection per listening handle per turn. When the loop is busy (a burst of
chat streams being admitted), connections queue in the kernel and, with one handle, come in one turn at a
time, each admitted alone. `reelgate serve` listens on `ACCEPTS_PER_TURN` duplicates of its socket
(`serving.listening_sockets`); here a real uvicorn server on them, on uvloop as `reelgate serve` runs, is
held busy while 100 clients connect, then says in which turn each of their requests came in.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from reelgate.serving import ACCEPTS_PER_TURN, listening_sockets

CLIENTS = 100


class Turns:
    """An ASGI app that answers each request with the number of the event loop's turn it started in;
    `/busy` holds the loop for half a second, as a long turn does."""

    def __init__(self) -> None:
        self.turn = 0
        self.busy = threading.Event()

    def tick(self) -> None:
        self.turn += 1
        asyncio.get_running_loop().call_soon(self.tick)  # runs once in each following turn

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            self.tick()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        turn = self.turn
        if scope["path"] == "/busy":
            self.busy.set()
            time.sleep(0.5)  # noqa: ASYNC251 (blocking the loop is the point)
        body = str(turn).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


def get(port: int, path: str) -> socket.socket:
    """A GET sent on a new connection (the kernel completes it whether or not the server accepts it)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    return conn


def answer(conn: socket.socket) -> int:
    with conn:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    return int(body)


@pytest.fixture
def served() -> Iterator[tuple[Turns, int]]:
    app = Turns()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    sockets = listening_sockets(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    port = sockets[0].getsockname()[1]
    try:
        deadline = time.monotonic() + 30
        while True:  # refused until the server has started (it listens then)
            try:
                answer(get(port, "/"))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        yield app, port
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_server_listens_on_duplicates_of_one_socket() -> None:
    sockets = listening_sockets(uvicorn.Config(Turns(), host="127.0.0.1", port=0))  # type: ignore[arg-type]
    try:
        assert len(sockets) == ACCEPTS_PER_TURN > 1
        assert {sock.getsockname() for sock in sockets} == {sockets[0].getsockname()}
        assert len({sock.fileno() for sock in sockets}) == ACCEPTS_PER_TURN
    finally:
        for sock in sockets:
            sock.close()


def test_connections_queued_while_the_loop_was_busy_come_in_several_a_turn(served: tuple[Turns, int]) -> None:
    app, port = served
    busy = get(port, "/busy")
    assert app.busy.wait(10)
    waiting = [get(port, f"/{i}") for i in range(CLIENTS)]  # all in the kernel's backlog now
    turns = [answer(conn) for conn in waiting]
    assert answer(busy) < min(turns)
    # One handle takes them in one a turn: 99 turns from the first to the last. ACCEPTS_PER_TURN handles
    # take CLIENTS / ACCEPTS_PER_TURN turns (24 with 4), and a few pass while the last are read and parsed.
    assert max(turns) - min(turns) <= CLIENTS // ACCEPTS_PER_TURN + 5 < CLIENTS - 1, sorted(turns)
