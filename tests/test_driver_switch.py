"""The switch point: the HTTP/1.1 driver hands its transport to another protocol driver,
after a 101 (a handler answers ``Upgrade``) or on a registered connection preface, with
the bytes it had already read. Proven with a minimal echo driver over real TCP, on both
loops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import pytest
import uvloop

from zerohttp.config import Config
from zerohttp.http.connection import HTTPConnection, ServerState
from zerohttp.http.driver import Upgrade, preface_state
from zerohttp.message.response import RequestHead, Response, error_response
from zerohttp.static.handler import StaticHandler

PREFACE = b"ECHO/1\r\n"


class EchoDriver(asyncio.Protocol):
    """The second protocol: every byte comes back, prefixed; counts its connections."""

    made: ClassVar[list[EchoDriver]] = []

    def __init__(self, state: ServerState | None = None) -> None:
        self.state = state  # a factory is called with the server's state
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        EchoDriver.made.append(self)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"echo:" + data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class UpgradingHandler:
    """``Upgrade: echo`` switches; anything else is the static handler's."""

    def __init__(self, static: StaticHandler) -> None:
        self.static = static

    def handle(self, request: RequestHead) -> Response | Upgrade:
        if request.header(b"upgrade") == b"echo":
            return Upgrade(
                Response(101, (("Upgrade", "echo"), ("Connection", "Upgrade"))), EchoDriver
            )
        return self.static.handle(request)


async def read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    return await asyncio.wait_for(reader.readuntil(marker), 5)


async def serve(
    root: Path, test: Callable[[ServerState, int], Awaitable[None]], *, prefaces: bool
) -> None:
    config = Config(root=str(root))
    state = ServerState(config, UpgradingHandler(StaticHandler(config)), zero_copy=True)
    if prefaces:
        state.prefaces[PREFACE] = EchoDriver
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTPConnection(state), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await test(state, port)
    finally:
        server.close()


LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[None]], None]:
    def runner(coroutine: Awaitable[None]) -> None:
        loop = LOOPS[request.param]()
        try:
            loop.run_until_complete(coroutine)
        finally:
            loop.close()

    EchoDriver.made.clear()
    return runner


def test_an_upgrade_hands_the_connection_and_its_early_bytes_over(
    tmp_path: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    (tmp_path / "a.txt").write_bytes(b"plain")

    async def test(state: ServerState, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # a plain request first: the connection is HTTP/1.1 until the upgrade
        writer.write(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_until(reader, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await reader.readexactly(5) == b"plain"
        # the upgrade, with bytes for the new protocol in the same packet
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhi")
        head = await read_until(reader, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Upgrade: echo\r\n" in head
        assert await reader.readexactly(7) == b"echo:hi"
        assert len(EchoDriver.made) == 1
        assert not any(isinstance(c, HTTPConnection) for c in state.connections)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")  # no longer parsed as HTTP
        assert await reader.readexactly(23) == b"echo:GET / HTTP/1.1\r\n\r\n"
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if EchoDriver.made[0].lost:
                break
            await asyncio.sleep(0.01)
        assert EchoDriver.made[0].lost

    run(serve(tmp_path, test, prefaces=False))


def test_a_registered_preface_switches_before_any_request(
    tmp_path: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    (tmp_path / "a.txt").write_bytes(b"plain")

    async def test(state: ServerState, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PREFACE[:3])  # a prefix only: the driver waits for the rest
        await writer.drain()
        await asyncio.sleep(0.05)
        assert EchoDriver.made == []
        writer.write(PREFACE[3:] + b"abc")
        assert await reader.readexactly(len(PREFACE) + 8) == b"echo:" + PREFACE + b"abc"
        writer.close()
        # everyone else still speaks HTTP/1.1
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_until(reader, b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        writer.close()
        assert len(EchoDriver.made) == 1

    run(serve(tmp_path, test, prefaces=True))


def test_an_upgrade_with_a_request_body_is_refused(
    tmp_path: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    async def test(state: ServerState, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nContent-Length: 2\r\n\r\nhi")
        head = await read_until(reader, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        assert EchoDriver.made == []
        writer.close()

    run(serve(tmp_path, test, prefaces=False))


def test_preface_state() -> None:
    prefaces = {PREFACE: EchoDriver}
    assert preface_state(PREFACE + b"x", prefaces) is EchoDriver
    assert preface_state(PREFACE[:4], prefaces) is True
    assert preface_state(b"GET / HTTP/1.1\r\n", prefaces) is False
    assert preface_state(b"ECHO/2", prefaces) is False
    assert error_response(400).status == 400
