"""`reelgate serve --processes N`: N server processes taking the connections of one listening socket.

The parent binds the port once and supervises (uvicorn's `Multiprocess`: the children are spawned with
the socket, one that dies is started again, SIGINT or SIGTERM stops them all with SIGTERM and waits for
them); it serves nothing itself. uvicorn's supervisor rather than one SO_REUSEPORT socket per child: it
is uvicorn's own tested code (health pings, restarts, a child that cannot start stops the server), and
a connection waiting in the backlog of a child that died is not lost with it.

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
import tempfile
import warnings
from collections.abc import Mapping

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from reelgate.observability.logging import configure_logging
from reelgate.observability.metrics import MULTIPROCESS_DIR
from reelgate.settings import Settings

#: The backend kind that renders on this machine's own GPU, one copy of its model in each process.
GPU_KIND = "diffusers"


def serve_processes(settings: Settings, overrides: Mapping[str, object]) -> bool:
    """Serve in `settings.server_processes` processes until SIGINT or SIGTERM; False when one could not start.

    `overrides` are the settings given on the command line, passed down to the children in their
    environment: each reads its settings again, from the same variables and file as this process.
    """
    os.environ.update({f"REELGATE_{name.upper()}": str(value) for name, value in overrides.items()})
    config = uvicorn.Config(
        f"{__name__}:server_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.server_processes,
        log_level="info",
        log_config=None,
        access_log=False,  # the Edge middleware (api/middleware.py) writes each request's line as it ends
    )
    with tempfile.TemporaryDirectory(prefix="reelgate-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR] = folder
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
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
