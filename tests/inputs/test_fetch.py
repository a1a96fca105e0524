"""Fetching reference images by URL against a real HTTP server on loopback, and every SSRF refusal.

The server counts connections, so "refused" is shown to mean "never connected". Host names are
answered by a fake resolver patched onto the running loop (`FakeDNS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import certifi
import pytest
from PIL import Image

from reelgate.errors import InvalidRequest
from reelgate.inputs.fetch import FetchPolicy, address_problem, fetch_image, resolve_reference

DEFAULT = FetchPolicy()
LOOPBACK = FetchPolicy(allow=("127.0.0.1/32",))
STREAMED = 32 * 2**20  #: far more than the loopback socket buffers hold


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes()


@dataclass
class ImageServer:
    """A tiny HTTP/1.1 server (one request per connection) with a route for each case."""

    scheme: str = "http"
    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  #: (path, Host header)
    streamed: int = 0  #: body bytes /stream managed to send

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = dict(line.split(": ", 1) for line in head[1:] if line)
            self.requests.append((path, headers.get("Host", headers.get("host", ""))))
            await ROUTES.get(path, not_found)(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


Route = Callable[[ImageServer, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def respond(writer: asyncio.StreamWriter, status: str, headers: dict[str, str], body: bytes = b"") -> None:
    lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    writer.write("\r\n".join(lines).encode() + body)
    await writer.drain()


def page(status: str, headers: dict[str, str], body: bytes = b"") -> Route:
    async def route(server: ImageServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await respond(writer, status, {**headers, "Content-Length": str(len(body))}, body)

    return route


async def not_found(server: ImageServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await respond(writer, "404 Not Found", {"Content-Length": "0"})


async def declares_huge(server: ImageServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await respond(writer, "200 OK", {"Content-Type": "image/png", "Content-Length": str(STREAMED)}, PNG)


async def streams_forever(server: ImageServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await respond(writer, "200 OK", {"Content-Type": "image/png"}, PNG)  # no length: ends when closed
    chunk = b"\x00" * 65536
    while server.streamed < STREAMED:
        writer.write(chunk)
        await writer.drain()
        server.streamed += len(chunk)


async def never_answers(server: ImageServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up and closes


ROUTES: dict[str, Route] = {
    "/image.png": page("200 OK", {"Content-Type": "image/png"}, PNG),
    "/labelled-jpeg": page("200 OK", {"Content-Type": "image/jpeg"}, PNG),
    "/page.html": page("200 OK", {"Content-Type": "image/png"}, b"<html>surprise</html>"),
    "/redirect-private": page("302 Found", {"Location": "http://10.0.0.1/image.png"}),
    "/redirect-local": page("302 Found", {"Location": "/image.png"}),
    "/redirect-ftp": page("301 Moved Permanently", {"Location": "ftp://example.com/image.png"}),
    "/redirect-loop": page("307 Temporary Redirect", {"Location": "/redirect-loop"}),
    "/huge": declares_huge,
    "/stream": streams_forever,
    "/hang": never_answers,
}


@asynccontextmanager
async def serving(tls: ssl.SSLContext | None = None) -> AsyncIterator[ImageServer]:
    state = ImageServer(scheme="https" if tls else "http")
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await state.handle(reader, writer)

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state
        listener.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


@pytest.fixture
async def server() -> AsyncIterator[ImageServer]:
    async with serving() as state:
        yield state


class FakeDNS:
    """Answers for chosen names on the running loop's getaddrinfo; each lookup takes the next answer."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        loop = asyncio.get_running_loop()
        self._real = loop.getaddrinfo
        monkeypatch.setattr(loop, "getaddrinfo", self.getaddrinfo)

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in self.answers:
            return await self._real(host, port, *args, **kwargs)
        self.asked.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [self._info(address, port) for address in addresses]

    @staticmethod
    def _info(address: str, port: int) -> tuple[Any, ...]:
        if ip_address(address).version == 6:
            return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
        return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


async def refused(url: str, policy: FetchPolicy = DEFAULT) -> str:
    with pytest.raises(InvalidRequest) as caught:
        await fetch_image(url, policy)
    assert caught.value.param == "input_reference"
    assert caught.value.status_code == 400
    return caught.value.message


# --- what is allowed works -----------------------------------------------------------------------


async def test_an_allow_listed_loopback_fetch_returns_the_exact_bytes(server: ImageServer) -> None:
    assert await fetch_image(server.url("/image.png"), LOOPBACK) == PNG
    assert server.requests == [("/image.png", f"127.0.0.1:{server.port}")]


async def test_the_content_type_is_not_trusted_the_bytes_are(server: ImageServer) -> None:
    assert await fetch_image(server.url("/labelled-jpeg"), LOOPBACK) == PNG
    message = await refused(server.url("/page.html"), LOOPBACK)
    assert message == "input_reference is not a JPEG, PNG, WebP or GIF image."


async def test_a_name_allowed_by_the_operator_connects_to_its_vetted_address_with_the_original_host(
    server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDNS(monkeypatch, {"images.internal": [["127.0.0.1"]]})
    policy = FetchPolicy(allow=("Images.Internal.",))
    assert await fetch_image(server.url("/image.png", host="images.internal"), policy) == PNG
    assert server.requests == [("/image.png", f"images.internal:{server.port}")]
    assert dns.asked == ["images.internal"]


async def test_the_host_is_resolved_once_so_a_rebinding_answer_is_never_used(
    server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDNS(monkeypatch, {"rebind.example": [["127.0.0.1"], ["10.0.0.1"]]})
    assert await fetch_image(server.url("/image.png", host="rebind.example"), LOOPBACK) == PNG
    assert dns.asked == ["rebind.example"]


async def test_a_redirect_within_the_allowed_server_is_followed(server: ImageServer) -> None:
    assert await fetch_image(server.url("/redirect-local"), LOOPBACK) == PNG
    assert [path for path, _ in server.requests] == ["/redirect-local", "/image.png"]


async def test_resolve_reference_takes_a_data_uri_or_a_url(server: ImageServer) -> None:
    import base64

    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert await resolve_reference(f"  {uri}\n", LOOPBACK) == PNG
    assert await resolve_reference(server.url("/image.png"), LOOPBACK) == PNG
    assert server.connections == 1


# --- refusals: nothing is connected to -----------------------------------------------------------


async def test_loopback_is_refused_without_the_allow_list_and_the_server_sees_nothing(server: ImageServer) -> None:
    message = await refused(server.url("/image.png"))
    assert message == "input_reference URL resolves to a loopback address (127.0.0.1), which is not allowed."
    assert server.connections == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "a loopback address (127.0.0.1)"),
        ("http://10.0.0.1/", "a private address (10.0.0.1)"),
        ("http://172.16.5.4/", "a private address (172.16.5.4)"),
        ("http://192.168.1.1/", "a private address (192.168.1.1)"),
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata address (169.254.169.254)"),
        ("http://169.254.1.1/", "a link-local address (169.254.1.1)"),
        ("http://100.64.0.1/", "a shared (carrier-grade NAT) address (100.64.0.1)"),
        ("http://0.0.0.0/", "an unspecified address (0.0.0.0)"),
        ("http://0.1.2.3/", "a private address (0.1.2.3)"),
        ("http://224.0.0.1/", "a multicast address (224.0.0.1)"),
        ("http://240.0.0.1/", "a reserved address (240.0.0.1)"),
        ("http://[::1]/", "a loopback address (::1)"),
        ("http://[::]/", "an unspecified address (::)"),
        ("http://[fe80::1]/", "a link-local address (fe80::1)"),
        ("http://[fc00::1]/", "a private address (fc00::1)"),
        ("http://[ff02::1]/", "a multicast address (ff02::1)"),
        ("http://[::ffff:10.0.0.1]/", "a private address (::ffff:a00:1)"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address (::ffff:7f00:1)"),
        ("http://[2002:a00:1::1]/", "a private address (2002:a00:1::1)"),  # 6to4 wrapping 10.0.0.1
        ("https://10.0.0.1:8443/x.png", "a private address (10.0.0.1)"),
        # Not globally reachable, though Python 3.11's `is_global` said so: only global addresses pass.
        ("http://[fec0::1]/", "a non-public address (fec0::1)"),
        ("http://192.0.0.8/", "a non-public address (192.0.0.8)"),
        ("http://192.88.99.1/", "a non-public address (192.88.99.1)"),
        ("http://[3fff::1]/", "a non-public address (3fff::1)"),
        ("http://[::ffff:192.0.0.8]/", "a non-public address (::ffff:c000:8)"),
        ("http://198.51.100.7/", "a private address (198.51.100.7)"),
        ("http://[2001:db8::1]/", "a private address (2001:db8::1)"),
        ("http://[64:ff9b:1::1]/", "a reserved address (64:ff9b:1::1)"),
        ("http://255.255.255.255/", "a reserved address (255.255.255.255)"),
    ],
)
async def test_non_public_addresses_are_refused(url: str, reason: str) -> None:
    assert await refused(url) == f"input_reference URL resolves to {reason}, which is not allowed."


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/cat.png", "input_reference URL must use http or https, not ftp."),
        ("file:///etc/passwd", "input_reference URL must use http or https, not file."),
        ("cat.png", "input_reference URL must use http or https."),
        ("http://user:pw@example.com/cat.png", "input_reference URL must not contain a user name or password."),
        ("http://:80/", "input_reference URL has no host."),
        ("http://[zz]/", "input_reference is not a valid URL."),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "input_reference URL points to a cloud metadata service (metadata.google.internal), which is not allowed.",
        ),
    ],
)
async def test_urls_that_are_not_plain_http_are_refused(url: str, message: str) -> None:
    assert await refused(url) == message


async def test_a_name_is_refused_if_any_of_its_addresses_is_private(
    server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeDNS(monkeypatch, {"mixed.example": [["127.0.0.1", "10.1.2.3"]]})
    message = await refused(server.url("/image.png", host="mixed.example"), LOOPBACK)
    assert message == "input_reference URL resolves to a private address (10.1.2.3), which is not allowed."
    assert server.connections == 0


async def test_localhost_is_refused(server: ImageServer) -> None:
    message = await refused(server.url("/image.png", host="localhost"))
    assert "resolves to a loopback address" in message
    assert server.connections == 0


async def test_an_unknown_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeDNS(monkeypatch, {"nowhere.example": [[]]})
    message = await refused("https://nowhere.example/cat.png")
    assert message == "input_reference URL host nowhere.example could not be resolved."


async def test_a_redirect_into_a_private_address_is_refused_and_named(server: ImageServer) -> None:
    started = time.monotonic()
    message = await refused(server.url("/redirect-private"), LOOPBACK)
    assert message == (
        "input_reference URL redirect to http://10.0.0.1/image.png resolves to a private address (10.0.0.1), "
        "which is not allowed."
    )
    assert time.monotonic() - started < 1  # refused, not a connection attempt timing out
    assert [path for path, _ in server.requests] == ["/redirect-private"]


async def test_a_redirect_to_another_scheme_is_refused(server: ImageServer) -> None:
    message = await refused(server.url("/redirect-ftp"), LOOPBACK)
    assert message == "input_reference URL redirect to ftp://example.com/image.png must use http or https, not ftp."


async def test_redirects_stop_after_max_redirects(server: ImageServer) -> None:
    policy = FetchPolicy(allow=("127.0.0.1/32",), max_redirects=2)
    assert await refused(server.url("/redirect-loop"), policy) == "input_reference URL redirected more than 2 times."
    assert len(server.requests) == 3


# --- the response ----------------------------------------------------------------------------------


async def test_a_declared_length_over_the_limit_is_refused_before_reading(server: ImageServer) -> None:
    message = await refused(server.url("/huge"), LOOPBACK)
    assert message == "input_reference URL's image is larger than the limit of 20971520 bytes."


async def test_an_endless_body_is_cut_off_at_the_limit(server: ImageServer) -> None:
    policy = FetchPolicy(allow=("127.0.0.1/32",), max_bytes=100_000)
    message = await refused(server.url("/stream"), policy)
    assert message == "input_reference URL's image is larger than the limit of 100000 bytes."
    assert server.streamed < STREAMED


async def test_an_error_status_is_refused(server: ImageServer) -> None:
    assert await refused(server.url("/missing"), LOOPBACK) == "input_reference URL returned HTTP 404."


async def test_a_server_that_never_answers_times_out_within_the_policy(server: ImageServer) -> None:
    policy = FetchPolicy(allow=("127.0.0.1/32",), timeout=0.3)
    started = time.monotonic()
    assert await refused(server.url("/hang"), policy) == "input_reference URL did not answer within 0.3 seconds."
    assert time.monotonic() - started < 2


async def test_a_closed_port_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = await refused(f"http://127.0.0.1:{port}/image.png", LOOPBACK)
    assert message == "input_reference URL could not be fetched: could not connect."


# --- the policy ----------------------------------------------------------------------------------


def test_policy_allow_list_takes_cidrs_addresses_and_names() -> None:
    policy = FetchPolicy(allow=("10.20.0.0/16", "fd00::1", "images.internal"))
    assert policy.permits_address(ip_address("10.20.3.4"))
    assert policy.permits_address(ip_address("::ffff:10.20.3.4"))
    assert policy.permits_address(ip_address("fd00::1"))
    assert not policy.permits_address(ip_address("10.21.0.1"))
    assert policy.permits_host("IMAGES.internal.") and not policy.permits_host("other.internal")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host", "*.internal", ""])
def test_policy_refuses_an_unusable_allow_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        FetchPolicy(allow=(entry,))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "2002:808:808::1", "::ffff:1.1.1.1"])
def test_public_addresses_have_no_problem(address: str) -> None:
    assert address_problem(ip_address(address)) is None


# --- https: connect to the vetted IP, but speak TLS to the name -------------------------------------


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` (its own CA) and its key, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path, "images.test")


@pytest.fixture
async def tls_server(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[ImageServer, list[str | None]]]:
    """An https ImageServer for images.test (trusted by httpx here), and the SNI names it was sent."""
    cert, key = certificate
    monkeypatch.setattr(certifi, "where", lambda: str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: names.append(name)
    async with serving(context) as state:
        yield state, names


async def test_https_sends_the_name_as_sni_and_verifies_the_certificate_against_it(
    tls_server: tuple[ImageServer, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, sni = tls_server
    FakeDNS(monkeypatch, {"images.test": [["127.0.0.1"]]})
    assert await fetch_image(server.url("/image.png", host="images.test"), LOOPBACK) == PNG
    assert sni == ["images.test"]
    assert server.requests == [("/image.png", f"images.test:{server.port}")]


async def test_https_refuses_a_certificate_for_another_name(
    tls_server: tuple[ImageServer, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = tls_server
    FakeDNS(monkeypatch, {"other.test": [["127.0.0.1"]]})
    message = await refused(server.url("/image.png", host="other.test"), LOOPBACK)
    assert message == "input_reference URL could not be fetched: could not connect."
    assert server.requests == []
