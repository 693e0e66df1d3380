"""Protection of the HTTP API: who may call it, how often, how much, and how many at once.

Every refusal is an `ApiError`: an HTTP status, an OpenAI-style error code and a message
written for the person calling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from voxloop.audio import BYTES_PER_MEGABYTE, SECONDS_PER_MINUTE
from voxloop.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

POLICY_VIOLATION = 1008  # WebSocket close code: not allowed
BUSY_RETRY_SECONDS = 5
# An over-size upload is read and dropped up to this much, so the client hears the 413 rather
# than a reset connection; beyond it the connection is closed.
DRAIN_MAX_BYTES = 256 * BYTES_PER_MEGABYTE
MAX_TRACKED_CLIENTS = 10_000
SERVER_ERROR = 500  # statuses from here on are the server's fault, not the caller's


class ApiError(HTTPException):
    """A refused API request: status, OpenAI-style `code`, and a message for the caller."""

    def __init__(
        self, status: int, message: str, code: str, retry_after: float | None = None
    ) -> None:
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after else None
        super().__init__(status, message, headers)
        self.message, self.code = message, code


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    """The JSON of an error, shaped like OpenAI's, so its clients show the message."""
    kind = "invalid_request_error" if status < SERVER_ERROR else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"Refusing to listen on {host} without a password: anyone on the network could use "
            "voxloop. Set server.api_key (e.g. VOXLOOP_SERVER__API_KEY=$(openssl rand -hex 16)) "
            "or bind to 127.0.0.1."
        )


def check_api_key(authorization: str | None, api_key: str | None) -> None:
    """Let the request through if no key is set or it carries `Authorization: Bearer <key>`."""
    if api_key is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), api_key):
        raise ApiError(
            401,
            "This voxloop needs an API key: send the header 'Authorization: Bearer <key>' "
            "with the key set in server.api_key.",
            "invalid_api_key",
        )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client address: `per_minute` requests, refilled evenly."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Take one request from `client`'s allowance; 429 when there is none left."""
        now, refill = self.clock(), self.per_minute / SECONDS_PER_MINUTE
        with self._lock:
            if len(self._buckets) > MAX_TRACKED_CLIENTS:  # forget clients that are quiet
                full = self.per_minute - refill * now
                self._buckets = {
                    k: b for k, b in self._buckets.items() if b.tokens - refill * b.updated < full
                }
            bucket = self._buckets.setdefault(client, _Bucket(self.per_minute, now))
            bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.updated) * refill)
            bucket.updated = now
            if bucket.tokens < 1:
                wait = (1 - bucket.tokens) / refill
                raise ApiError(
                    429,
                    f"Too many requests: at most {self.per_minute} a minute from one address. "
                    f"Try again in {math.ceil(wait)} s.",
                    "rate_limit_exceeded",
                    retry_after=wait,
                )
            bucket.tokens -= 1


class Admission:
    """At most `workers` requests work at once and `max_waiting` wait; the rest hear "busy"."""

    def __init__(self, workers: int, max_waiting: int) -> None:
        self.workers, self.max_waiting = workers, max_waiting
        self.working = self.waiting = 0
        self._semaphore: asyncio.Semaphore | None = None  # made in the server's event loop

    async def enter(self) -> Slot:
        """A work slot, after waiting for one; 503 busy when too many are already waiting."""
        if self.working + self.waiting >= self.workers + self.max_waiting:
            raise ApiError(
                503,
                f"voxloop is busy ({self.working} requests in progress, {self.waiting} waiting). "
                f"Please try again in {BUSY_RETRY_SECONDS} s.",
                "busy",
                retry_after=BUSY_RETRY_SECONDS,
            )
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.workers)
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.working += 1
        return Slot(self)

    def _leave(self) -> None:
        self.working -= 1
        assert self._semaphore is not None
        self._semaphore.release()


class Slot:
    """A request's place among the workers; released once, when its response has been sent."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        """Give the place to the next request (again: no effect)."""
        if self._admission is not None:
            self._admission._leave()
            self._admission = None

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()


class BodyLimit:
    """ASGI middleware: a 413 for an API request body over `max_megabytes`, read as it comes,
    so a huge upload never fills memory or disk."""

    def __init__(self, app: ASGIApp, max_megabytes: float, prefix: str = "/v1/") -> None:
        self.app, self.prefix = app, prefix
        self.max_bytes = int(max_megabytes * BYTES_PER_MEGABYTE)
        self.message = f"The upload is larger than the limit of {max_megabytes:g} MB."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive, min(int(declared), DRAIN_MAX_BYTES))
            await _send_json(send, 413, error_body(413, self.message, "file_too_large"))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # a body without a (truthful) length
                raise ApiError(413, self.message, "file_too_large")
            return message

        await self.app(scope, counted, send)


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop a request body, up to `limit` bytes."""
    read, more = 0, True
    while more and read <= limit:
        message = await receive()
        read += len(message.get("body", b""))
        more = message.get("more_body", False)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
