"""Fetching a client's reference image by URL without letting the client reach our own network (SSRF).

Each hop (the URL, then every redirect's Location) goes through the same steps:

    check the URL ──> resolve the host once ──> vet EVERY address ──> GET the first address itself

The request goes to the vetted IP, with the original name in the Host header and in TLS SNI (and
the certificate checked against that name), so a second DNS answer cannot swap in an internal
address (DNS rebinding). Redirects are followed by hand, each one vetted like the first URL.
Only globally reachable addresses are allowed (an allow rule: `ipaddress`'s `is_global`, completed
with the IANA ranges older Pythons still call global); loopback, private, link-local, multicast,
shared (CGNAT), reserved, site-local and unspecified addresses and cloud metadata hosts are refused,
each named, unless the operator's `FetchPolicy.allow` lists the address's network or the host's
exact name. A refused address is never connected to.

Every refusal or failure is an `InvalidRequest` naming the request parameter (`input_reference`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter

import httpx

from reelgate.errors import InvalidRequest
from reelgate.inputs.images import PARAM, decode_data_uri, sniff

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Names of cloud metadata services; refused by name before any lookup.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
#: AWS/GCP/Azure/OpenStack (IPv4 and IPv6), AWS ECS task metadata, Alibaba Cloud.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
#: Not globally reachable in IANA's special-purpose registries, yet `is_global` on Python 3.11 before
#: 3.11.10 (gh-113171): IETF protocol assignments, the 6to4 relay anycast, deprecated site-local
#: IPv6 and IPv6 documentation (RFC 9637).
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "192.88.99.0/24", "fec0::/10", "3fff::/20"))

#: Why an address is refused, checked in this order; the first that applies is the one reported.
_PROBLEMS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("a cloud metadata address", lambda address: address in _METADATA_ADDRESSES),
    ("an unspecified address", attrgetter("is_unspecified")),
    ("a loopback address", attrgetter("is_loopback")),
    ("a link-local address", attrgetter("is_link_local")),
    ("a multicast address", attrgetter("is_multicast")),
    ("a shared (carrier-grade NAT) address", lambda address: address in _SHARED),
    ("a reserved address", attrgetter("is_reserved")),
    ("a private address", attrgetter("is_private")),
)

_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REQUEST_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity"}


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for fetching one reference image by URL.

    `allow` lists what the operator permits even though it is not public: CIDRs ("127.0.0.1/32",
    "10.20.0.0/16"), single addresses, or exact host names ("images.internal", whose every address
    is then permitted). Invalid entries raise ValueError when the policy is made.

    >>> FetchPolicy(max_bytes=5 * 2**20, allow=("10.20.0.0/16", "images.internal"))
    """

    max_bytes: int = 20 * 2**20
    timeout: float = 10.0  #: seconds for everything: lookups, redirects, the whole body
    max_redirects: int = 3
    allow: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.timeout <= 0 or self.max_redirects < 0:
            raise ValueError(f"invalid fetch limits: {self!r}")
        networks, hosts = _parse_allow(self.allow)
        object.__setattr__(self, "_networks", networks)
        object.__setattr__(self, "_hosts", hosts)

    def permits_host(self, host: str) -> bool:
        return _normal_host(host) in self._hosts

    def permits_address(self, address: IPAddress) -> bool:
        embedded = _embedded_ipv4(address)
        candidates = (address,) if embedded is None else (address, embedded)
        return any(candidate in network for candidate in candidates for network in self._networks)


def _parse_allow(entries: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in entries:
        network = _as_network(entry)
        if network is not None:
            networks.append(network)
        elif _HOST_NAME.match(_normal_host(entry)):
            hosts.add(_normal_host(entry))
        else:
            raise ValueError(f"fetch allow-list entry {entry!r} is neither a CIDR, an address nor a host name")
    return tuple(networks), frozenset(hosts)


def _as_network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


async def resolve_reference(value: str, policy: FetchPolicy, *, param: str = PARAM) -> bytes:
    """The image bytes a client's `input_reference` string stands for: a base64 data URI or an http(s) URL."""
    text = value.strip()
    if text[:5].lower() == "data:":
        return decode_data_uri(text, policy.max_bytes, param=param)
    return await fetch_image(text, policy, param=param)


async def fetch_image(url: str, policy: FetchPolicy, *, param: str = PARAM) -> bytes:
    """GET an image over http(s) within `policy`; its bytes, sniffed to be JPEG, PNG, WebP or GIF.

    >>> await fetch_image("https://example.com/cat.png", FetchPolicy())
    """
    try:
        async with asyncio.timeout(policy.timeout):
            data = await _fetch(url, policy, param)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise InvalidRequest(f"{param} URL did not answer within {policy.timeout:g} seconds.", param=param) from exc
    except httpx.HTTPError as exc:
        raise InvalidRequest(f"{param} URL could not be fetched: {_failure(exc)}.", param=param) from exc
    sniff(data, param=param)
    return data


async def vet_url(url_text: str, policy: FetchPolicy, *, param: str) -> tuple[httpx.URL, IPAddress]:
    """`url_text` parsed, and the vetted address to connect to for it (the checks image URLs pass).

    Connect with `pinned(url, address)` so that a second DNS answer cannot swap in another address.
    """
    url = _parse_url(url_text.strip(), param)
    return url, await _vet(url, policy, f"{param} URL", param)


def pinned(url: httpx.URL, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL aimed at `address`, the Host header and the TLS extensions that keep `url`'s name."""
    host = url.raw_host.decode("ascii")
    return url.copy_with(host=str(address)), {"Host": url.netloc.decode("ascii")}, {"sni_hostname": host}


def _failure(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.ProtocolError):
        return "the response was not valid HTTP"
    return "the transfer failed"


async def _fetch(url_text: str, policy: FetchPolicy, param: str) -> bytes:
    url = _parse_url(url_text, param)
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=policy.timeout) as client:
        for hop in range(policy.max_redirects + 1):
            subject = f"{param} URL" if hop == 0 else f"{param} URL redirect to {_shown(url)}"
            address = await _vet(url, policy, subject, param)
            result = await _get(client, url, address, policy, param)
            if isinstance(result, bytes):
                return result
            url = result
    raise InvalidRequest(f"{param} URL redirected more than {policy.max_redirects} times.", param=param)


def _parse_url(text: str, param: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        return base.join(text) if base is not None else httpx.URL(text)
    except httpx.InvalidURL as exc:
        what = f"URL redirects to an invalid URL ({_shown(text)})" if base else "is not a valid URL"
        raise InvalidRequest(f"{param} {what}.", param=param) from exc


def _shown(url: httpx.URL | str) -> str:
    text = str(url)
    return text if len(text) <= 200 else text[:200] + "…"


async def _vet(url: httpx.URL, policy: FetchPolicy, subject: str, param: str) -> IPAddress:
    """The address to connect to for `url`, once the URL and every address of its host pass the checks."""
    _check_url(url, subject, param)
    host = url.raw_host.decode("ascii")
    allowed_by_name = policy.permits_host(host)
    if _normal_host(host) in METADATA_HOSTS and not allowed_by_name:
        raise InvalidRequest(
            f"{subject} points to a cloud metadata service ({host}), which is not allowed.", param=param
        )
    addresses = await _resolve(host, url.port or _DEFAULT_PORTS[url.scheme], subject, param)
    for address in addresses:
        problem = address_problem(address)
        if problem is not None and not allowed_by_name and not policy.permits_address(address):
            raise InvalidRequest(f"{subject} resolves to {problem} ({address}), which is not allowed.", param=param)
    return addresses[0]


def _check_url(url: httpx.URL, subject: str, param: str) -> None:
    if url.scheme not in _DEFAULT_PORTS:
        scheme = f", not {url.scheme}" if url.scheme else ""
        raise InvalidRequest(f"{subject} must use http or https{scheme}.", param=param)
    if url.userinfo:
        raise InvalidRequest(f"{subject} must not contain a user name or password.", param=param)
    if not url.raw_host:
        raise InvalidRequest(f"{subject} has no host.", param=param)


async def _resolve(host: str, port: int, subject: str, param: str) -> list[IPAddress]:
    """Every address `host` stands for, in the resolver's order; an IP literal stands for itself."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidRequest(f"{subject} host {host} could not be resolved.", param=param) from exc
    families = (socket.AF_INET, socket.AF_INET6)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos if info[0] in families]
    if not addresses:
        raise InvalidRequest(f"{subject} host {host} has no IP address.", param=param)
    return list(dict.fromkeys(addresses))


def address_problem(address: IPAddress) -> str | None:
    """Why a fetch must not go to `address` (e.g. "a private address"), or None for a public one.

    IPv4 addresses carried inside IPv6 ones (::ffff:10.0.0.1, 6to4 2002:a00:1::) are judged as IPv4.
    """
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_problem(embedded)
    for problem, applies in _PROBLEMS:
        if applies(address):
            return problem
    return None if _is_global(address) else "a non-public address"


def _is_global(address: IPAddress) -> bool:
    return address.is_global and not any(address in network for network in _NOT_GLOBAL)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour
    return None


async def _get(
    client: httpx.AsyncClient, url: httpx.URL, address: IPAddress, policy: FetchPolicy, param: str
) -> bytes | httpx.URL:
    """GET `url` from `address`: the body, or the URL a redirect points to."""
    target, host, extensions = pinned(url, address)
    headers = {**_REQUEST_HEADERS, **host}
    async with client.stream("GET", target, headers=headers, extensions=extensions) as reply:
        if reply.is_redirect:
            return _parse_url(reply.headers["Location"], param, base=url)
        if not reply.is_success:
            raise InvalidRequest(f"{param} URL returned HTTP {reply.status_code}.", param=param)
        return await _read_body(reply, policy.max_bytes, param)


async def _read_body(reply: httpx.Response, max_bytes: int, param: str) -> bytes:
    """The body as sent (no content decoding), refused as soon as it is known to exceed `max_bytes`."""
    declared = reply.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, param)
    body = bytearray()
    async for chunk in reply.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes, param)
    return bytes(body)


def _too_large(max_bytes: int, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param} URL's image is larger than the limit of {max_bytes} bytes.", param=param)
