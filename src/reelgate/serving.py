"""`reelgate serve`: one server process (`serve_one`), or with `--processes N` N of them taking the
connections of one listening socket. Either listens on a few duplicates of its socket (`ACCEPTS_PER_TURN`).

With `--processes`, the parent binds the port once and supervises (uvicorn's `Multiprocess`: the children
are spawned with the socket, one that dies is started again, SIGINT or SIGTERM stops them all with
SIGTERM and waits for them); it serves nothing itself. uvicorn's supervisor rather than one SO_REUSEPORT
socket per child: it is uvicorn's own tested code (health pings, restarts, a child that cannot start stops
the server), and a connection waiting in the backlog of a child that died is not lost with it.

Every child is a whole server, as a second `reelgate serve` on the same database would be: HTTP, worker
slots, recovery, retention, webhook and orphan sweeps. What must hold between processes is held by the
database, as for a fleet of hosts: an admission locks its key (one charge per task, an identical request
joins the running task, rate and concurrency limits counted from the tasks table), a claim is a
conditional update, every later write of a worker is fenced by its attempt, webhook deliveries are
leased, and a task of a process that dies is recovered when its lease runs out. A task renders in the
process that accepted it, so that its streams there follow every step at once; a stream in another
process follows it by NOTIFY on PostgreSQL, by the row reader's poll (every half keep-alive) on SQLite.
`/metrics` adds all the processes up (`observability/metrics.py`); log lines carry the pid. `/readyz`
answers for the process that took the request: all check the same database, disk and bucket, each its own
worker slots and backends, and a process takes connections only once its start-up is complete.

A model on this machine's GPU (the `diffusers` backend) would be loaded by every process onto the same
card, so the parent refuses to start N > 1 processes that render one (`gpu_refusal`): a `reelgate worker`
renders it while the server processes only serve (`REELGATE_RUN_BACKENDS` without it).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from reelgate.observability.logging import configure_logging
from reelgate.observability.metrics import MULTIPROCESS_DIR
from reelgate.settings import Settings

#: The backend kind that renders on this machine's own GPU, one copy of its model in each process.
GPU_KIND = "diffusers"

#: The most connections a server process takes from the port's backlog per turn of its event loop.
#: uvloop's libuv accepts one connection per listening handle per turn. In a burst, where a turn serves
#: the requests already in (their admission, their first chunks), the rest waited in the kernel and came
#: in one a turn: of 500 streams opened at once, 270 were still waiting there after the first turns, then
#: each was admitted alone, about a millisecond apart, and the p99 of the first byte doubled. A process
#: listens on this many duplicates of its socket, so a turn takes up to this many. Measured against one
#: (bench/streams.py, docs/development.md): 4 cut the p99 at 500 and 2,000 streams by 13-25% and left a
#: lone request as it was; the p50 mostly rose, by up to 35% (more requests in at once, each a step at a
#: time). 64 cut the p99 further but made a lone request 1.5x slower: each connection wakes every handle.
ACCEPTS_PER_TURN = 4


def serve_one(settings: Settings) -> bool:
    """`reelgate serve` in this process until SIGINT or SIGTERM; False when it could not start."""
    from reelgate.app import create_app

    config = uvicorn.Config(create_app(settings), **_server_options(settings))
    server = uvicorn.Server(config)
    with suppress(KeyboardInterrupt):  # uvicorn raises the SIGINT it stopped on again once it has stopped
        server.run(sockets=listening_sockets(config))
    return server.started


def listening_sockets(config: uvicorn.Config) -> list[socket.socket]:
    """The port's socket, bound (uvicorn logs its address), and `ACCEPTS_PER_TURN - 1` duplicates of it."""
    bound = config.bind_socket()
    return [bound, *(bound.dup() for _ in range(ACCEPTS_PER_TURN - 1))]


def _server_options(settings: Settings) -> dict[str, Any]:
    # log_config=None: uvicorn's own lines go through the root handler, in the same format; access_log=False:
    # the Edge middleware (api/middleware.py) writes each request's line as it ends (observability/http.py).
    return {"host": settings.host, "port": settings.port, "log_level": "info", "log_config": None, "access_log": False}


def serve_processes(settings: Settings, overrides: Mapping[str, object]) -> bool:
    """Serve in `settings.server_processes` processes until SIGINT or SIGTERM; False when one could not start.

    `overrides` are the settings given on the command line, passed down to the children in their
    environment: each reads its settings again, from the same variables and file as this process.
    """
    os.environ.update({f"REELGATE_{name.upper()}": str(value) for name, value in overrides.items()})
    config = uvicorn.Config(
        f"{__name__}:server_app", factory=True, workers=settings.server_processes, **_server_options(settings)
    )
    with tempfile.TemporaryDirectory(prefix="reelgate-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR] = folder
        supervisor = Multiprocess(config, sockets=listening_sockets(config))
        supervisor.run()
    return all(process.exitcode != STARTUP_FAILURE for process in supervisor.processes)


def server_app() -> FastAPI:
    """The app of one child process (uvicorn calls this in each), on the settings the parent passed down."""
    from reelgate.app import create_app  # here, in the child: the parent only supervises, in less memory

    settings = Settings()
    configure_logging(settings)
    # The queue depth gauges are read from this process's own values at every scrape (not from the files),
    # so dropping the labels of backends whose queue emptied here is all they need.
    warnings.filterwarnings("ignore", "Clearing labels has not been implemented", UserWarning)
    return create_app(settings)


def gpu_refusal(settings: Settings) -> str | None:
    """Why `settings.server_processes` processes cannot serve this catalog, or None when they can.

    Each process would load the local GPU models it renders onto the same card: N copies of a model sized
    for one, an out-of-memory failure whose error names neither the cause nor the way out. This one names
    both, before any process starts.
    """
    from reelgate.backends.registry import kind_of
    from reelgate.catalog import Catalog

    catalog = Catalog.build(settings.models)
    backends = settings.run_backends or sorted({entry.backend for entry in catalog})
    on_gpu = [entry for entry in catalog if entry.backend in backends and kind_of(entry.backend) == GPU_KIND]
    if not on_gpu:
        return None
    # No other backend left: a name no model uses, so that the servers render nothing at all.
    kept = [name for name in backends if kind_of(name) != GPU_KIND] or ["procedural"]
    models = ", ".join(f"'{entry.name}' (backend {entry.backend})" for entry in on_gpu)
    workers = " ".join(f"--backend {name}" for name in sorted({entry.backend for entry in on_gpu}))
    processes = settings.server_processes
    return (
        f"cannot serve in {processes} processes: every one would load {models} onto this machine's GPU, "
        f"{processes} copies of a model sized for one. Let the server processes only serve and a `reelgate worker` "
        f"render the GPU models (docs/scaling.md): `REELGATE_RUN_BACKENDS='{json.dumps(kept)}' reelgate serve "
        f"--processes {processes}` and, beside it, `reelgate worker {workers}`."
    )
