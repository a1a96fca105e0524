"""Thousands of open chat streams against one `reelgate serve`: first byte, silences, 5xx, renders, memory.

For each concurrency level and database, starts a fresh real server (default settings, a tiny procedural
model so the gateway is the bottleneck, one fresh SQLite file or PostgreSQL database), opens N streamed
`/v1/chat/completions` requests at once with raw asyncio sockets (a hand-written HTTP/1.1 request, the
chunked SSE body read by hand; httpx is too slow for 5,000) and records per stream: the time to the first
`data:` line with content, the longest gap between data lines while it is open, and how it ended. Each
stream is held open for `--hold` seconds after its first content (or until the server ends it), then
closed by the client; its task goes on server side. Every request has its own prompt (resend protection
would join equal ones) and the load is spread over `--keys` keys with no rpm/concurrency limits.

Level 1 is "one at a time": `--sequential` requests in a row, each closed at its first content. Every level
is then run on the bare FastAPI SSE endpoint (`bench/bare_sse.py`) too, alone on the machine as the server
was: the floor that this client and machine allow, printed beside the first byte. Renders meanwhile are the tasks
completed (read from the database) during a level's window, set against the idle throughput: renders/s
of a server with a full queue and no stream open. Peak RSS is the server process's high-water mark.

    .venv/bin/python bench/streams.py --levels 1,500,2000 --pg-levels 500
    .venv/bin/python bench/streams.py --levels 1,50,200 --pg-levels 50 --hold 10 --baseline HEAD~3 --json out.json

`--revision REV` measures that revision instead of the working tree; `--baseline REV` runs the same levels
against that revision too (`--processes N` serves in N processes, `--baseline-processes M` the baseline in M:
`--processes 2 --baseline HEAD --baseline-processes 1` compares two processes with one). Either revision is
checked out in a temporary `git worktree` and served by this venv with the worktree's `src/` first on
PYTHONPATH; both tables are printed, then the ratios (this / baseline).

A figure from one run can be off by half on a shared machine. `--repeat N` runs N rounds, the revisions
taking turns, prints every round's tables, then each figure's range over the rounds and the ratios of
their medians:

    .venv/bin/python bench/streams.py --levels 500,2000 --pg-levels 500 --hold 10 --baseline HEAD~1 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
MODEL = "bench-tiny"
TINY = {MODEL: {"backend": "procedural", "seconds": 1, "fps": 8, "portrait": "64x112", "price": "0.001"}}
ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(8)
PROMPT = "中国街头吃西瓜"
#: The failure line's words (zh and en): a stream that shows one ended in an error.
FAILED_MARKS = ("生成失败", "Failed")
#: The line of a stream that gave up following its task (the database failed under it): also an error.
GAVE_UP_MARKS = ("任务仍在生成中", "Still generating")
T = TypeVar("T")
PG_ADMIN_DSN = os.environ.get("REELGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


# ---------------------------------------------------------------- one stream, raw sockets


@dataclass
class Stream:
    """What one streamed request saw; times are seconds from just before it connected."""

    status: int = 0
    first_content: float | None = None
    longest_silence: float = 0.0
    done: bool = False
    #: "", or why the stream is an error: http_5xx, http_4xx, connect, reset, malformed, failed, gave_up, timeout.
    error: str = ""
    detail: str = ""


def request_bytes(port: int, key: str | None, prompt: str) -> bytes:
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": prompt}]})
    payload = body.encode()
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while chunk := await read_chunk(reader):
            body += chunk
        return body
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked body; b"" at the last chunk."""
    size = int((await reader.readline()).split(b";")[0], 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


class Events:
    """Splits a stream's SSE bytes into `data:` payloads and keeps the stream's account."""

    def __init__(self, result: Stream, started: float) -> None:
        self.result, self.started = result, started
        self.buffer = b""
        self.last: float | None = None

    def feed(self, data: bytes, now: float) -> None:
        *events, self.buffer = (self.buffer + data).split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self.data_line(line[5:].strip(), now)
                elif line.strip():
                    self.malformed(line)

    def data_line(self, payload: bytes, now: float) -> None:
        result = self.result
        if payload == b"[DONE]":
            result.done = True
            return
        try:
            choice = json.loads(payload)["choices"][0]
            content = choice["delta"].get("content") or ""
        except (ValueError, LookupError, TypeError, AttributeError):
            self.malformed(payload)
            return
        if self.last is not None:
            result.longest_silence = max(result.longest_silence, now - self.last)
        if content and result.first_content is None:
            result.first_content = now - self.started
        if result.first_content is not None:
            self.last = now
        if not result.error and any(mark in content for mark in FAILED_MARKS):
            result.error, result.detail = "failed", content.strip()[:200]
        if not result.error and any(mark in content for mark in GAVE_UP_MARKS):
            result.error, result.detail = "gave_up", content.strip()[:200]

    def malformed(self, line: bytes) -> None:
        if not self.result.error:
            self.result.error, self.result.detail = "malformed", line[:200].decode(errors="replace")

    def closed_by_client(self, now: float) -> None:
        """The client ends the stream: the silence so far counts."""
        if self.last is not None:
            self.result.longest_silence = max(self.result.longest_silence, now - self.last)


async def one_stream(port: int, key: str | None, prompt: str, hold: float, ttfb_timeout: float) -> Stream:
    """Open a stream, read it until `hold` seconds after its first content (0: at first content), or its end.

    Times are taken with `perf_counter`: uvloop's `loop.time()` counts whole milliseconds, cached per turn.
    """
    result = Stream()
    events = Events(result, time.perf_counter())
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(ttfb_timeout) as deadline:
            reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
            writer.write(request_bytes(port, key, prompt))
            await read_stream(reader, events, deadline, hold)
    except TimeoutError:
        if result.first_content is None:
            result.error, result.detail = "timeout", f"no content in {ttfb_timeout:.0f} s"
        else:
            events.closed_by_client(time.perf_counter())
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        result.error, result.detail = ("connect" if writer is None else "reset"), repr(exc)[:200]
    finally:
        if writer is not None:
            writer.close()
    return result


async def read_stream(reader: asyncio.StreamReader, events: Events, deadline: asyncio.Timeout, hold: float) -> None:
    result = events.result
    result.status, headers = await read_head(reader)
    if result.status != 200:
        result.error = f"http_{result.status // 100}xx"
        result.detail = (await read_body(reader, headers))[:300].decode(errors="replace")
        return
    loop = asyncio.get_running_loop()
    while chunk := await read_chunk(reader):
        held = result.first_content is not None
        events.feed(chunk, time.perf_counter())
        if not held and result.first_content is not None:
            if hold <= 0:
                return
            deadline.reschedule(loop.time() + hold)
    if not result.done and not result.error:
        result.error, result.detail = "malformed", "the body ended without data: [DONE]"


# ---------------------------------------------------------------- a server under test


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with suppress(OSError):
                todo += [int(child) for child in (task / "children").read_text().split()]
    return pids


def status_kb(pid: int, field_name: str) -> int:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class Server:
    """One `reelgate serve` on a fresh database, its keys, and what it is measured by."""

    def __init__(
        self,
        pythonpath: str | None,
        database: str,
        keys: int,
        log_dir: Path,
        processes: int = 1,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.pythonpath, self.database, self.key_count, self.processes = pythonpath, database, keys, processes
        #: REELGATE_* variables set on top of the defaults (`--setting`).
        self.settings = settings or {}
        self.data = Path(tempfile.mkdtemp(prefix="reelgate-streams-", dir=log_dir))
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.keys: list[str] = []
        self.pg_name = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.children_peak_kb = 0

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
        env |= {
            "REELGATE_CONFIG": str(self.data / "absent.toml"),
            "REELGATE_MODELS": json.dumps(TINY),
            "REELGATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "REELGATE_SERVER_PROCESSES": str(self.processes),
        } | self.settings
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.pythonpath, env.get("PYTHONPATH")]))
        if self.database == "postgres":
            self.pg_name = f"reelgate_streams_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            await admin.execute(f'CREATE DATABASE "{self.pg_name}"')
            await admin.close()
            env["REELGATE_DATABASE_URL"] = self.pg_url().replace("postgresql://", "postgresql+asyncpg://", 1)
        command = [sys.executable, "-m", "reelgate", "serve", "--port", str(self.port), "--data-dir", str(self.data)]
        with self.log.open("wb") as log:
            self.process = await asyncio.to_thread(
                subprocess.Popen, command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data
            )
        await self.wait_ready()
        async with httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            body = {"balance": "1000000", "rpm_limit": 0, "concurrency_limit": 0}
            for _ in range(self.key_count):
                created = await client.post("/admin/keys", json=body)
                created.raise_for_status()
                self.keys.append(created.json()["secret"])

    def pg_url(self) -> str:
        return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{self.pg_name}"

    async def wait_ready(self) -> None:
        assert self.process is not None
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise SystemExit(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
                with suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise SystemExit(f"server at {self.url} never became ready:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        if self.pg_name:
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            await admin.close()

    async def count(self, status: str) -> int:
        """Tasks in this status, straight from the database (renders may run in other processes)."""
        query = "SELECT count(*) FROM tasks WHERE status = $1"
        if self.pg_name:
            conn = await asyncpg.connect(self.pg_url())
            try:
                return int(await conn.fetchval(query, status))
            finally:
                await conn.close()
        return await asyncio.to_thread(self._sqlite_count, query.replace("$1", "?"), status)

    def _sqlite_count(self, query: str, status: str) -> int:
        conn = sqlite3.connect(f"file:{self.data / 'reelgate.db'}?mode=ro", uri=True, timeout=30)
        try:
            return int(conn.execute(query, (status,)).fetchone()[0])
        finally:
            conn.close()

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        return status_kb(self.process.pid, "VmHWM") / 1024

    async def sample_children(self) -> None:
        """Keep the peak RSS of the server's child processes (render workers, if it has any)."""
        assert self.process is not None
        while True:
            children = process_tree(self.process.pid)[1:]
            self.children_peak_kb = max(self.children_peak_kb, sum(status_kb(pid, "VmRSS") for pid in children))
            await asyncio.sleep(0.5)

    def error_lines(self) -> Counter[str]:
        """The server log's ERROR and WARNING lines, by message (ids and the context fields left out)."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            if " ERROR " in line or " WARNING " in line:
                message = re.sub(r" (task_id|key_id)=\S+", "", line.split(" ", 3)[-1])
                found[re.sub(r"\b(task|key)_[0-9a-z]{26}\b", r"\1_…", message)[:240]] += 1
        return found


@asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    """`server` started, then stopped (its database dropped) when the block ends."""
    try:
        await server.start()
        sampler = asyncio.create_task(server.sample_children())
        try:
            yield server
        finally:
            sampler.cancel()
    finally:
        await server.stop()


# ---------------------------------------------------------------- measurements


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Prompts:
    """A distinct prompt per request, so resend protection never joins two of them."""

    def __init__(self) -> None:
        self.nonce, self.n = secrets.token_hex(3), 0

    def __call__(self) -> str:
        self.n += 1
        return f"{PROMPT} {self.nonce}-{self.n}"


async def client_lag(samples: list[float]) -> None:
    """How late this process's own loop wakes up: a bench that lags measures itself, not the server."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.1)
        samples.append(time.perf_counter() - before - 0.1)


async def warm_up(server: Server, prompts: Prompts, args: argparse.Namespace) -> None:
    """A few streams (imports, caches, pools), then wait for their renders so a level starts empty."""
    for i in range(5):
        await one_stream(server.port, server.keys[i % len(server.keys)], prompts(), 0, args.ttfb_timeout)
    for _ in range(300):
        if await server.count("completed") + await server.count("failed") >= 5:
            return
        await asyncio.sleep(0.1)


async def sequential(server: Server, prompts: Prompts, args: argparse.Namespace) -> dict[str, Any]:
    streams = [
        await one_stream(server.port, server.keys[i % len(server.keys)], prompts(), 0, args.ttfb_timeout)
        for i in range(args.sequential)
    ]
    return summarise(streams, args)


@asynccontextmanager
async def bare_server() -> AsyncIterator[int]:
    """The floor: a bare FastAPI SSE endpoint (`bench/bare_sse.py`) on its port, its first chunk at once."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bare_sse:app", "--port", str(port)]
    process = await asyncio.to_thread(subprocess.Popen, [*command, "--log-level", "warning"], stdout=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                with suppress(httpx.TransportError):
                    await client.get(f"http://{HOST}:{port}/docs")
                    break
                await asyncio.sleep(0.1)
        yield port
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 15)


async def bare_floor(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """The same load on the bare endpoint: `--sequential` requests one at a time for level 1, else N at once."""
    async with bare_server() as port:
        for _ in range(5):
            await one_stream(port, None, "x", 0, args.ttfb_timeout)
        if n == 1:
            streams = [await one_stream(port, None, "x", 0, args.ttfb_timeout) for _ in range(args.sequential)]
        else:
            streams = list(await asyncio.gather(*(one_stream(port, None, "x", 0, args.ttfb_timeout) for _ in range(n))))
    return summarise(streams, args)


async def concurrent(server: Server, n: int, prompts: Prompts, args: argparse.Namespace) -> dict[str, Any]:
    """N streams opened at once and held; renders completed from the first request to the last close."""
    lag: list[float] = []
    ticker = asyncio.create_task(client_lag(lag))
    before = await server.count("completed")
    started, cpu = time.monotonic(), time.process_time()
    keys = server.keys
    streams = await asyncio.gather(
        *(one_stream(server.port, keys[i % len(keys)], prompts(), args.hold, args.ttfb_timeout) for i in range(n))
    )
    window = time.monotonic() - started
    renders = await server.count("completed") - before
    ticker.cancel()
    figures = summarise(list(streams), args)
    figures |= {"window_s": window, "renders": renders, "renders_per_s": renders / window}
    figures["client_lag_max_s"] = max(lag, default=0.0)
    figures["client_cpu_s"] = time.process_time() - cpu
    return figures


async def idle_throughput(server: Server, prompts: Prompts, args: argparse.Namespace) -> float:
    """Renders/s with a full queue and no stream open: `--idle-tasks` queued (streams closed at first content)."""
    gate = asyncio.Semaphore(16)
    keys = server.keys

    async def submit(i: int) -> Stream:
        async with gate:
            return await one_stream(server.port, keys[i % len(keys)], prompts(), 0, args.ttfb_timeout)

    await asyncio.gather(*(submit(i) for i in range(args.idle_tasks)))
    before, started = await server.count("completed"), time.monotonic()
    done, elapsed = before, 0.0
    # Only polls that still found a queue count: a drained queue would idle the worker.
    while elapsed < args.idle_window:
        await asyncio.sleep(0.5)
        now_done, now = await server.count("completed"), time.monotonic() - started
        if await server.count("queued") == 0:
            break
        done, elapsed = now_done, now
    if not elapsed:
        raise SystemExit("the queue drained before the idle throughput was measured: raise --idle-tasks")
    return (done - before) / elapsed


def summarise(streams: list[Stream], args: argparse.Namespace) -> dict[str, Any]:
    firsts = [s.first_content for s in streams if s.first_content is not None and not s.error]
    silences = [s.longest_silence for s in streams if s.first_content is not None]
    errors = Counter(s.error for s in streams if s.error)
    details = Counter(f"{s.error}: {s.detail}"[:200] for s in streams if s.error)
    return {
        "streams": len(streams),
        "ttfb_p50_s": percentile(firsts, 0.5),
        "ttfb_p99_s": percentile(firsts, 0.99),
        "ttfb_mean_s": statistics.mean(firsts) if firsts else None,
        "ttfb_min_s": min(firsts, default=None),
        "silence_p99_s": percentile(silences, 0.99),
        "silence_max_s": max(silences, default=None),
        "silences_over_limit": sum(s > args.silence_limit for s in silences),
        "http_5xx": errors.pop("http_5xx", 0),
        "other_errors": dict(errors),
        "error_details": dict(details.most_common(5)),
        "ttfb_s": firsts,
        "longest_silence_s": silences,
    }


# ---------------------------------------------------------------- one table: every level on one revision


@dataclass
class Row:
    level: int
    database: str
    figures: dict[str, Any] = field(default_factory=dict)


async def table(label: str, pythonpath: str | None, args: argparse.Namespace, log_dir: Path) -> list[Row]:
    plan = [(n, "sqlite") for n in args.levels] + [(n, "postgres") for n in args.pg_levels]

    def server_on(database: str) -> Server:
        return Server(pythonpath, database, args.keys, log_dir, args.processes, dict(args.setting))

    idle: dict[str, float] = {}
    rows: list[Row] = []
    for database in dict.fromkeys(db for n, db in plan if n > 1):
        async with running(server_on(database)) as server:
            prompts = Prompts()
            await warm_up(server, prompts, args)
            idle[database] = await idle_throughput(server, prompts, args)
            print(f"[{label}] idle render throughput, {database}: {idle[database]:.2f}/s", flush=True)
    for n, database in plan:
        async with running(server_on(database)) as server:
            prompts = Prompts()
            await warm_up(server, prompts, args)
            if n == 1:
                figures = await sequential(server, prompts, args)
            else:
                figures = await concurrent(server, n, prompts, args)
                figures["idle_renders_per_s"] = idle[database]
            figures["peak_rss_mb"] = server.peak_rss_mb()
            figures["children_peak_rss_mb"] = server.children_peak_kb / 1024
            figures["server_errors"] = dict(server.error_lines().most_common(5))
        figures["bare"] = await bare_floor(n, args)  # with the server stopped, as it ran alone
        rows.append(Row(n, database, figures))
        print(f"[{label}] {load(rows[-1])}: done", flush=True)
    return rows


# ---------------------------------------------------------------- printing


def ms_or_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def load(row: Row) -> str:
    """The row's first cell: its concurrency level and database."""
    db = "SQLite" if row.database == "sqlite" else "PostgreSQL"
    return f"1 at a time, {db}" if row.level == 1 else f"{row.level:,} concurrent, {db}"


def describe(row: Row) -> list[str]:
    """The row's cells: load | first byte | longest silence | 5xx | other errors | renders | peak RSS."""
    f = row.figures
    rss = f"{f['peak_rss_mb']:.0f} MB" + (
        f" (+{f['children_peak_rss_mb']:.0f} MB children)" if f["children_peak_rss_mb"] else ""
    )
    others = ", ".join(f"{count} {kind}" for kind, count in f["other_errors"].items()) or "0"
    first = f"{ms_or_s(f['ttfb_p50_s'])} / {ms_or_s(f['ttfb_p99_s'])}"
    bare = f["bare"]
    ratio = f["ttfb_p50_s"] / bare["ttfb_p50_s"] if f["ttfb_p50_s"] and bare["ttfb_p50_s"] else float("nan")
    fastest = f"; its fastest {ms_or_s(bare['ttfb_min_s'])}" if row.level > 1 and bare.get("ttfb_min_s") else ""
    first += f" — {ratio:.1f}x bare SSE ({ms_or_s(bare['ttfb_p50_s'])} / {ms_or_s(bare['ttfb_p99_s'])}{fastest})"
    if row.level == 1:
        return [load(row), first, "—", str(f["http_5xx"]), others, "—", rss]
    silence = f"{ms_or_s(f['silence_p99_s'])} / {ms_or_s(f['silence_max_s'])} ({f['silences_over_limit']} over limit)"
    idle = f["idle_renders_per_s"]
    share = f"{f['renders_per_s'] / idle:.0%}" if idle else "—"
    renders = f"{f['renders']} in {f['window_s']:.0f} s ({f['renders_per_s']:.2f}/s) vs {idle:.2f}/s idle: {share}"
    return [load(row), first, silence, str(f["http_5xx"]), others, renders, rss]


HEADER = ["load", "first byte p50 / p99", "longest silence p99 / max", "5xx", "other errors", "renders meanwhile"]
HEADER.append("peak RSS")


def markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if ours is not None and theirs else "—"


def compare(ours: list[Row], theirs: list[Row]) -> str:
    """This revision / the baseline, per row: lower is better but for renders."""
    names = ("ttfb_p50_s", "ttfb_p99_s", "silence_p99_s", "renders_per_s", "peak_rss_mb")
    rows = []
    for a, b in zip(ours, theirs, strict=True):
        rows.append([load(a), *(ratio(a.figures.get(name), b.figures.get(name)) for name in names)])
    header = ["load", "first byte p50", "first byte p99", "silence p99", "renders/s", "peak RSS"]
    return markdown(rows, header)


def notes(rows: list[Row]) -> list[str]:
    found = []
    for row in rows:
        f = row.figures
        label = load(row)
        for detail, count in f["error_details"].items():
            found.append(f"- {label}: {count} x {detail}")
        for line, count in f["server_errors"].items():
            found.append(f"- {label}, server log: {count} x {line}")
        if f.get("client_lag_max_s", 0) > 0.5:
            found.append(f"- {label}: the bench's own loop lagged up to {f['client_lag_max_s']:.2f} s")
    return found


def print_table(title: str, rows: list[Row], args: argparse.Namespace) -> None:
    print(f"\n### {title}\n")
    print(markdown([describe(row) for row in rows], HEADER))
    print(
        f"\nheld {args.hold:.0f} s after first content; {args.sequential} requests one at a time; "
        f"over limit = streams silent > {args.silence_limit:.0f} s; fastest = the first stream to hear its content; "
        "RSS = the server process's high-water mark"
    )
    for line in notes(rows):
        print(line)


# ---------------------------------------------------------------- main


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="reelgate-baseline-"))
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(folder), revision], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=True)


def revision_of(path: Path) -> str:
    found = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip()


def _edited(path: Path) -> str:
    """Says so when tracked files differ from HEAD, so that a table names what it measured."""
    status = ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"]
    found = subprocess.run(status, capture_output=True)
    return " with uncommitted changes" if found.stdout.strip() else ""


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """On uvloop where it is installed (uvicorn's standard extra brings it): the lighter the client, the
    more the figures are the server's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def measure(label: str, revision: str | None, args: argparse.Namespace, logs: Path) -> tuple[str, list[Row]]:
    """The table of one revision: the working tree's code, or REV's checked out beside it."""
    if revision is None:
        title = f"{label}: working tree ({revision_of(ROOT)}{_edited(ROOT)}), {_how(args)}"
        return title, run(table(title, None, args, logs))
    with worktree(revision) as folder:
        title = f"{label}: {revision} ({revision_of(folder)}), {_how(args)}"
        return title, run(table(title, str(folder / "src"), args, logs))


def main(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers started from here inherit it
    wanted = max([*args.levels, *args.pg_levels], default=0) * 2 + 200
    if hard < wanted:
        print(f"warning: RLIMIT_NOFILE is {hard}, {wanted} wanted", file=sys.stderr)
    logs = Path(tempfile.mkdtemp(prefix="reelgate-streams-"))
    baseline_args = argparse.Namespace(**{**vars(args), "processes": args.baseline_processes or args.processes})
    rounds: list[dict[str, list[Row]]] = []
    for n in range(args.repeat):  # the revisions take turns, so that a slow spell of the machine hits both
        suffix = f", round {n + 1} of {args.repeat}" if args.repeat > 1 else ""
        results = dict([measure(f"this run{suffix}", args.revision, args, logs)])
        if args.baseline:
            results.update([measure(f"baseline{suffix}", args.baseline, baseline_args, logs)])
        rounds.append(results)
    for results in rounds:
        for title, rows in results.items():
            print_table(title, rows, args)
    revisions = [list(results.values()) for results in rounds]
    mine = [both[0] for both in revisions]
    base = [both[1] for both in revisions] if args.baseline else []
    if args.repeat > 1:
        print_spans("this run", mine)
        if base:
            print_spans("baseline", base)
    if base:
        print(f"\n### ratios, this run / baseline{' (medians over the rounds)' if args.repeat > 1 else ''}\n")
        print(compare(medians(mine), medians(base)))
    if args.json:
        raw = [{title: [asdict(row) for row in rows] for title, rows in results.items()} for results in rounds]
        Path(args.json).write_text(json.dumps({"settings": vars(args), "rounds": raw}, indent=1, default=str))
    print(f"\nserver logs under {logs}")


# ---------------------------------------------------------------- several rounds: ranges and medians


def span(values: list[float | None], show: Callable[[float | None], str] = ms_or_s) -> str:
    """The lowest and the highest of `values` (one figure when they are equal)."""
    known = [value for value in values if value is not None]
    if not known:
        return "—"
    low, high = min(known), max(known)
    return show(low) if show(low) == show(high) else f"{show(low)} – {show(high)}"


def print_spans(label: str, rounds: list[list[Row]]) -> None:
    """One line per level: each figure's range over the rounds (this machine's noise, made visible)."""
    lines = []
    for same_level in zip(*rounds, strict=True):
        figures = [row.figures for row in same_level]

        def over(name: str, figures: list[dict[str, Any]] = figures) -> list[float | None]:
            return [f.get(name) for f in figures]

        shares = [
            f["renders_per_s"] / f["idle_renders_per_s"] if f.get("idle_renders_per_s") else None for f in figures
        ]
        bare = [f["bare"] for f in figures]
        lines.append(
            [
                load(same_level[0]),
                span(over("ttfb_p50_s")),
                span(over("ttfb_p99_s")),
                f"{span([b['ttfb_p50_s'] for b in bare])} / {span([b['ttfb_p99_s'] for b in bare])}",
                span(over("silence_max_s")) if same_level[0].level > 1 else "—",  # closed at first content
                str(sum(f["http_5xx"] for f in figures)),
                span(shares, lambda share: "—" if share is None else f"{share:.0%}"),
                span(over("peak_rss_mb"), lambda mb: "—" if mb is None else f"{mb:.0f} MB"),
            ]
        )
    header = ["load", "first byte p50", "first byte p99", "bare p50 / p99", "longest silence", "5xx"]
    print(f"\n### {label}: ranges over {len(rounds)} rounds\n")
    print(markdown(lines, [*header, "renders vs idle", "peak RSS"]))


def medians(rounds: list[list[Row]]) -> list[Row]:
    """Per level, the median of each figure `compare` reads over the rounds."""
    names = ("ttfb_p50_s", "ttfb_p99_s", "silence_p99_s", "renders_per_s", "peak_rss_mb")
    middle = []
    for same_level in zip(*rounds, strict=True):
        figures = {}
        for name in names:
            known = [row.figures[name] for row in same_level if row.figures.get(name) is not None]
            figures[name] = statistics.median(known) if known else None
        middle.append(Row(same_level[0].level, same_level[0].database, figures))
    return middle


def levels(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def _how(args: argparse.Namespace) -> str:
    """How the server was run, for a table's title: its processes and any `--setting`."""
    return f"--processes {args.processes}" + "".join(f" {name}={value}" for name, value in args.setting)


def setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.startswith("REELGATE_"):
        raise argparse.ArgumentTypeError(f"expected REELGATE_NAME=VALUE, got {text!r}")
    return name, value


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=levels, default=[1, 500, 2000, 5000], help="on SQLite (1: one at a time)")
    parser.add_argument("--pg-levels", type=levels, default=[500, 2000], help="on PostgreSQL; '' for none")
    parser.add_argument("--hold", type=float, default=30, help="seconds a stream stays open after its first content")
    parser.add_argument("--ttfb-timeout", type=float, default=180, help="a stream without content by then fails")
    parser.add_argument("--sequential", type=int, default=100, help="requests in the one-at-a-time row")
    parser.add_argument("--keys", type=int, default=50, help="keys the streams are spread over")
    parser.add_argument("--idle-tasks", type=int, default=400, help="tasks queued to measure idle throughput")
    parser.add_argument("--idle-window", type=float, default=15, help="seconds the idle throughput is measured")
    parser.add_argument("--silence-limit", type=float, default=10, help="a longer silence is counted")
    parser.add_argument("--revision", help="measure this git revision instead of the working tree")
    parser.add_argument("--baseline", help="a git revision to run the same levels against")
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--processes", type=int, default=1, help="server processes (REELGATE_SERVER_PROCESSES)")
    parser.add_argument(
        "--setting",
        type=setting,
        action="append",
        default=[],
        metavar="REELGATE_NAME=VALUE",
        help="a server setting on top of the defaults (repeatable; both revisions get it)",
    )
    parser.add_argument(
        "--baseline-processes", type=int, help="server processes of the baseline (default: --processes)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds (the revisions take turns); prints each figure's range"
    )
    main(parser.parse_args())
