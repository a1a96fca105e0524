"""Relaying videos: reelgate vs litellm's proxy, both in front of the same fake OpenAI Videos upstream.

Starts the fake upstream (`relay_fake_upstream.py`, every video ready 1 s after its create), then one
gateway at a time: `reelgate serve` with a catalog entry of backend `openai-videos`, and litellm's proxy
(1.108.14) with a `model_list` entry for the same upstream. Each gateway gets the same client: N videos,
C at a time, each created, polled and downloaded through the gateway (POST /v1/videos, GET
/v1/videos/{id}, GET /v1/videos/{id}/content). The client polls as openai-python's
`videos.create_and_poll` does: at once, then every `openai-poll-after-ms` of the first answer that sends
it, else every second (`--poll-ms` fixes the interval instead).

Printed per gateway: CPU seconds of its whole process tree per video (psutil, before/after, after a
warm-up), p50/p99 from create to the last byte downloaded, failures; then reelgate/litellm ratios. With
`--rounds N` both gateways stay up and take turns, and the medians (`~`) are compared: a shared machine's
load then falls on both alike.
reelgate does more with each video (it downloads, stores, probes and thumbnails the MP4 and writes the
ledger); litellm passes the upstream's bytes through.

litellm lives in this benchmark's own venv, never in the project's: the first run creates
`bench/.venv-litellm` (git-ignored), or beforehand:

    .venv/bin/python bench/relay_peer.py --install-litellm
    .venv/bin/python bench/relay_peer.py --videos 100 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from relay_fake_upstream import KEY as UPSTREAM_KEY  # noqa: E402
from relay_fake_upstream import make_media  # noqa: E402

LITELLM_VENV = HERE / ".venv-litellm"
LITELLM_VERSION = "1.108.14"
#: The proxy extra's Requires-Dist, by hand: two of its pins (litellm-proxy-extras 0.4.110.post1,
#: litellm-enterprise 0.1.79.post3) are not on the index, so their nearest releases go in without deps.
LITELLM_PROXY_DEPS = [
    "gunicorn>=23.0.0,<24",
    "uvicorn>=0.33.0,<1",
    "uvloop>=0.22.1,<1",
    "fastapi>=0.136.3,<1",
    "starlette>=1.0.1,<2",
    "backoff>=2.2.1,<3",
    "pyyaml>=6.0.3,<7",
    "rq>=2.7.0,<3",
    "orjson>=3.11.6,<4",
    "hiredis>=3.0.0,<4",
    "apscheduler>=3.11.2,<4",
    "fastapi-sso>=0.19.0,<1",
    "pyjwt>=2.13.0,<3",
    "python-multipart>=0.0.27,<1",
    "cryptography>=49.0.0,<51",
    "pynacl>=1.6.2,<2",
    "websockets>=15.0.1,<16",
    "boto3>=1.43.117,<2",
    "azure-identity>=1.25.2,<2",
    "azure-storage-blob>=12.28.0,<13",
    "mcp>=2.3.0,<3",
    "httpx2>=2.10.0,<3",
    "pydantic>=2.12.0,<3",
    "restrictedpython>=8.5,<9",
    "rich>=13.9.4,<14",
    "inquirerpy>=0.3.4,<1",
    "tomlkit>=0.13.3,<1",
    "polars>=1.38.1,<2",
    "soundfile>=0.12.1,<1",
    "granian>=2.7.4,<3",
    "expression>=5.6.0,<6",
]
LITELLM_NEAREST = ["litellm-proxy-extras==0.4.110", "litellm-enterprise==0.1.79.post1"]
MASTER_KEY = "sk-bench-litellm-master"
MODEL = "sora-2"


def install_litellm() -> Path:
    """The litellm CLI of the bench venv, created and filled on first use."""
    cli = LITELLM_VENV / "bin" / "litellm"
    if cli.exists():
        return cli
    print(f"creating {LITELLM_VENV} (litellm {LITELLM_VERSION} and its proxy dependencies)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, f"litellm=={LITELLM_VERSION}", *LITELLM_PROXY_DEPS], check=True)
    subprocess.run([*pip, "--no-deps", *LITELLM_NEAREST], check=True)
    return cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[psutil.Process]:
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(ready_url, child, log)
        yield psutil.Process(child.pid)
    finally:
        child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()


def _wait_ready(url: str, child: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {child.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never answered:\n{log.read_text()[-3000:]}")


def cpu_seconds(root: psutil.Process) -> float:
    """User + system CPU of `root`, its live descendants, and the children it has already reaped."""
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
        if proc.pid == root.pid:
            total += times.children_user + times.children_system
    return total


@dataclass
class Gateway:
    name: str
    base: str  #: ends in /v1
    headers: dict[str, str]


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    polls: int = 0


async def one_video(client: httpx.AsyncClient, gw: Gateway, poll_ms: int | None, result: Result) -> None:
    start = time.perf_counter()
    body = {"model": MODEL, "prompt": "a red lighthouse by the sea at dusk", "seconds": "4", "size": "256x144"}
    created = await client.post(f"{gw.base}/videos", json=body, headers=gw.headers)
    if created.status_code != 200:
        result.failures.append(f"create {created.status_code}: {created.text[:200]}")
        return
    video_id = created.json()["id"]
    interval = poll_ms
    while True:
        polled = await client.get(f"{gw.base}/videos/{video_id}", headers=gw.headers)
        result.polls += 1
        status = polled.json().get("status") if polled.status_code == 200 else f"HTTP {polled.status_code}"
        if status not in ("queued", "in_progress"):
            break
        if interval is None:  # openai-python: the first answer's hint, else a second, kept from then on
            hint = polled.headers.get("openai-poll-after-ms")
            interval = int(hint) if hint is not None else 1000
        await asyncio.sleep(interval / 1000)
    if status != "completed":
        result.failures.append(f"{video_id}: {status}: {polled.text[:200]}")
        return
    content = await client.get(f"{gw.base}/videos/{video_id}/content", headers=gw.headers)
    if content.status_code != 200 or content.content[4:8] != b"ftyp":
        result.failures.append(f"{video_id}: content {content.status_code} {content.content[:60]!r}")
        return
    result.seconds.append(time.perf_counter() - start)


async def drive(gw: Gateway, videos: int, concurrency: int, poll_ms: int | None) -> Result:
    result = Result()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def run() -> None:
            async with gate:
                await one_video(client, gw, poll_ms, result)

        await asyncio.gather(*(run() for _ in range(videos)))
    return result


@dataclass
class Row:
    name: str
    videos: int
    cpu_ms: float  #: per video
    p50: float
    p99: float
    failures: int
    polls: float  #: client polls per video

    def line(self) -> str:
        return (
            f"{self.name:9} videos {self.videos:4}  CPU/video {self.cpu_ms:7.1f} ms  "
            f"p50 {self.p50:6.3f} s  p99 {self.p99:6.3f} s  polls/video {self.polls:4.1f}  failed {self.failures}"
        )


def median_row(name: str, runs: list[Row]) -> Row:
    """Each figure's median over the rounds."""
    return Row(
        f"{name}~" if len(runs) > 1 else name,
        round(statistics.median(r.videos for r in runs)),
        statistics.median(r.cpu_ms for r in runs),
        statistics.median(r.p50 for r in runs),
        statistics.median(r.p99 for r in runs),
        sum(r.failures for r in runs),
        statistics.median(r.polls for r in runs),
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def warm_up(gw: Gateway, args: argparse.Namespace) -> None:
    """A few videos first: imports, connection pools and caches are not what is measured."""
    warm = asyncio.run(drive(gw, args.warmup, min(args.warmup, args.concurrency), args.poll_ms))
    if warm.failures:
        raise SystemExit(f"{gw.name}: warm-up failed: {warm.failures[:3]}")


def measure(root: psutil.Process, gw: Gateway, args: argparse.Namespace) -> Row:
    name = gw.name
    before = cpu_seconds(root)
    with profiled(root, args.py_spy and args.py_spy.with_name(f"{name}-{args.py_spy.name}")):
        result = asyncio.run(drive(gw, args.videos, args.concurrency, args.poll_ms))
    used = cpu_seconds(root) - before
    for failure in result.failures[:5]:
        print(f"  {name}: {failure}")
    done = max(1, len(result.seconds))
    return Row(
        name,
        len(result.seconds),
        used * 1000 / done,
        percentile(result.seconds, 0.5),
        percentile(result.seconds, 0.99),
        len(result.failures),
        result.polls / max(1, args.videos),
    )


@contextmanager
def profiled(root: psutil.Process, out: Path | None) -> Iterator[None]:
    """py-spy (from the bench venv: `pip install py-spy` there) sampling the gateway's tree into `out`."""
    if out is None:
        yield
        return
    spy = LITELLM_VENV / "bin" / "py-spy"
    command = [str(spy), "record", "--format", "raw", "--subprocesses", "--rate", "200", "-o", str(out)]
    sampler = subprocess.Popen([*command, "-p", str(root.pid)], stdout=subprocess.DEVNULL)
    time.sleep(1)
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(30)


@contextmanager
def reelgate(upstream: str, work: Path, args: argparse.Namespace) -> Iterator[tuple[psutil.Process, Gateway]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    settings = {"base_url": upstream, "api_key_env": "BENCH_UPSTREAM_KEY", **dict(args.upstream_setting)}
    model = {
        "backend": "openai-videos:fake",
        "seconds": 4,
        "portrait": "144x256",
        "landscape": "256x144",
        "fps": 24,
        "price": "0.001",
        "options": {"model": MODEL},
    }
    env.update(
        BENCH_UPSTREAM_KEY=UPSTREAM_KEY,
        REELGATE_CONFIG=str(work / "absent.toml"),
        REELGATE_UPSTREAMS=json.dumps({"fake": settings}),
        REELGATE_MODELS=json.dumps({MODEL: model}),
        # Relayed videos mostly wait on the upstream: one slot per video in flight, as an operator would set.
        REELGATE_WORKER_SLOTS=str(args.concurrency),
        **dict(args.reelgate_env),
    )
    data = work / "reelgate"
    base = [sys.executable, "-m", "reelgate"]
    key = subprocess.run(
        [*base, "keys", "create", "--balance", "100000", "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    command = [*base, "serve", "--port", str(port), "--data-dir", str(data)]
    with process(command, env, f"http://127.0.0.1:{port}/readyz", work / "reelgate.log") as root:
        yield root, Gateway("reelgate", f"http://127.0.0.1:{port}/v1", {"Authorization": f"Bearer {key}"})


@contextmanager
def litellm(upstream: str, work: Path, args: argparse.Namespace) -> Iterator[tuple[psutil.Process, Gateway]]:
    cli = install_litellm()
    config = work / "litellm.yaml"
    entry = {"model": f"openai/{MODEL}", "api_base": upstream, "api_key": UPSTREAM_KEY}
    models = [{"model_name": MODEL, "litellm_params": entry}]
    proxy = {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}
    config.write_text(json.dumps(proxy))  # YAML is a superset of JSON
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    env.pop("DATABASE_URL", None)
    port = free_port()
    command = [str(cli), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with process(command, env, f"http://127.0.0.1:{port}/health/liveliness", work / "litellm.log") as root:
        yield root, Gateway("litellm", f"http://127.0.0.1:{port}/v1", {"Authorization": f"Bearer {MASTER_KEY}"})


@contextmanager
def fake_upstream(work: Path, ready_after: float) -> Iterator[str]:
    media = make_media(work / "media")
    port = free_port()
    command = [
        sys.executable,
        str(HERE / "relay_fake_upstream.py"),
        "--port",
        str(port),
        "--media",
        str(media),
        "--ready-after",
        str(ready_after),
        "--timeline",
    ]
    ready = f"http://127.0.0.1:{port}/v1/videos/none"
    with process(command, dict(os.environ), ready, work / "upstream.log"):
        yield f"http://127.0.0.1:{port}/v1"


def pair(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="rounds, gateways in turn; medians printed")
    parser.add_argument("--ready-after", type=float, default=1.0, help="seconds the upstream takes per video")
    parser.add_argument("--poll-ms", type=int, help="the client's poll interval (default: as openai-python)")
    parser.add_argument("--only", choices=["reelgate", "litellm"], help="run one gateway")
    parser.add_argument("--upstream-setting", type=pair, action="append", default=[], help="reelgate: KEY=VALUE")
    parser.add_argument("--reelgate-env", type=pair, action="append", default=[], help="reelgate: NAME=VALUE")
    parser.add_argument("--install-litellm", action="store_true", help="create bench/.venv-litellm and exit")
    parser.add_argument("--py-spy", type=Path, help="profile each gateway into <gateway>-<this name>")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) and print it")
    args = parser.parse_args()
    if args.install_litellm:
        print(install_litellm())
        return
    work = Path(tempfile.mkdtemp(prefix="relay-peer-"))
    rows: dict[str, list[Row]] = {}
    with ExitStack() as stack:
        upstream = stack.enter_context(fake_upstream(work, args.ready_after))
        starts = [start for start in (reelgate, litellm) if args.only in (None, start.__name__)]
        gateways = [stack.enter_context(start(upstream, work, args)) for start in starts]
        for _, gw in gateways:
            warm_up(gw, args)
        for _ in range(args.rounds):  # in turns, so that both see the same machine
            for root, gw in gateways:
                rows.setdefault(gw.name, []).append(measure(root, gw, args))
                print(rows[gw.name][-1].line(), flush=True)
    medians = {name: median_row(name, runs) for name, runs in rows.items()}
    if args.rounds > 1:
        for row in medians.values():
            print(row.line())
    if len(medians) == 2:
        ours, peer = medians["reelgate"], medians["litellm"]
        print(
            f"ratio     reelgate/litellm  CPU/video {ours.cpu_ms / peer.cpu_ms:.2f}x  "
            f"p50 {ours.p50 / peer.p50:.2f}x  p99 {ours.p99 / peer.p99:.2f}x"
        )
    print(f"upstream ready after {args.ready_after:g} s; {args.concurrency} at a time; cpus {os.cpu_count()}")
    if args.keep:
        print(f"logs in {work}")
    else:
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
