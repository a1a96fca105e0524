"""One task's HTTP conversation with one upstream, over an injected `httpx.AsyncClient`.

Every httpx error and every HTTP error answer becomes an `UpstreamError` here, with the upstream's key
scrubbed from its message. The key is added per request and only to the upstream's own origin, so a
result link elsewhere never receives it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from reelgate.backends.relay.faults import UpstreamError, from_response, from_transport, malformed
from reelgate.backends.relay.upstream import Upstream


class Exchange:
    def __init__(self, upstream: Upstream, client: httpx.AsyncClient) -> None:
        self.upstream = upstream
        self.client = client

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The answer, read whole; UpstreamError for no answer or an HTTP error."""
        async with self.stream(method, url, **kwargs) as response:
            try:
                await response.aread()
            except httpx.RequestError as exc:
                raise self._scrubbed(from_transport(exc)) from exc
        return response

    async def json(self, method: str, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """The decoded JSON body and the response; a body that is not JSON is a (retryable) UpstreamError."""
        response = await self.send(method, url, **kwargs)
        try:
            return response.json(), response
        except ValueError as exc:
            raise self._scrubbed(malformed(f"{method} {_path(url)}")) from exc

    @asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """A response whose body is still to be read (see `lines`); closed when the block ends."""
        headers = {**self.upstream.auth_headers(url), **kwargs.pop("headers", {})}
        request = self.client.build_request(method, url, headers=headers, timeout=self.upstream.timeout, **kwargs)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.RequestError as exc:
            raise self._scrubbed(from_transport(exc)) from exc
        try:
            if response.status_code >= 400:
                await self._raise_for(response)
            yield response
        finally:
            await response.aclose()

    async def _raise_for(self, response: httpx.Response) -> None:
        try:
            await response.aread()
        except httpx.RequestError as exc:
            raise self._scrubbed(from_transport(exc)) from exc
        raise self._scrubbed(from_response(response))

    async def lines(self, response: httpx.Response) -> AsyncIterator[str]:
        """The body's lines as they arrive; a dropped or silent connection is an UpstreamError."""
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.RequestError as exc:
            raise self._scrubbed(from_transport(exc)) from exc

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.RequestError as exc:
            raise self._scrubbed(from_transport(exc)) from exc

    def _scrubbed(self, error: UpstreamError) -> UpstreamError:
        """The error without the upstream's key in it: some upstreams quote the key they refused."""
        error.message = self.upstream.scrub(error.message)
        error.args = (error.message,)
        return error


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one verifying TLS context every relay client shares: building one loads the CA bundle, ~20 ms
    of CPU that a client per video would otherwise spend again for each video."""
    return httpx.create_ssl_context()


def _path(url: str) -> str:
    return httpx.URL(url).path
