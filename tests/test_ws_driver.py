"""The WebSocket driver's connection rules, without sockets: a transport that records what
it is asked to do, client frames fed as bytes, and deadlines called by hand.

These are the rules a mutation of ``websocket/driver.py`` breaks first: reading paused at
--ws-max-queue, ``send`` waiting for the drain, 1001 at shutdown, 1011 for a pong that
never came, and the abort of a connection whose close never completes.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from test_ws_e2e import BINARY, CLOSE, PING, PONG, TEXT, close_payload, frame

from zerohttp.http.exchange import ClientDisconnected
from zerohttp.http.stats import Stats
from zerohttp.message.response import RequestHead
from zerohttp.websocket.codec import ServerCodec
from zerohttp.websocket.driver import (
    BATCH_BYTES,
    CLOSE_TIMEOUT,
    Ended,
    WebSocketDriver,
    WebSocketSettings,
)

T = TypeVar("T")


class Transport:
    """Records what the driver asks of its transport."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.writes = 0
        self.reading = True
        self.closed = False
        self.aborted = False
        self.limits: tuple[int, int] | None = None

    def write(self, data: bytes) -> None:
        assert not self.closed and not self.aborted, "written after close"
        self.written += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.limits = (high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def frames(self) -> list[tuple[int, bytes]]:
        """What was written, as (opcode, payload) frames; consumed."""
        data, found = bytes(self.written), []
        self.written.clear()
        while data:
            length = data[1] & 0x7F
            start = 2
            if length == 126:
                (length,) = struct.unpack("!H", data[2:4])
                start = 4
            elif length == 127:
                (length,) = struct.unpack("!Q", data[2:10])
                start = 10
            found.append((data[0] & 0x0F, data[start : start + length]))
            data = data[start + length :]
        return found


def run(test: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(test())  # type: ignore[arg-type]


def make_driver(
    hold_close: bool = False, **settings: Any
) -> tuple[WebSocketDriver, Transport, Any]:
    settings.setdefault("ping_interval", 0)
    state: Any = SimpleNamespace(
        loop=asyncio.get_running_loop(),
        connections=set(),
        writing_soon=[],
        stats=Stats(),
        log=SimpleNamespace(active=False),
    )
    codec = ServerCodec(max_size=1024 * 1024, hold_close=hold_close)
    driver = WebSocketDriver(
        state, WebSocketSettings(**settings), codec, RequestHead(b"GET", b"/ws", b"1.1")
    )
    transport = Transport()
    driver.connection_made(transport)  # type: ignore[arg-type]
    return driver, transport, state


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- backpressure ------------------------------------------------------------------------------


def test_reading_pauses_at_max_queue_and_resumes_below_it() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver(max_queue=4)
        driver.data_received(b"".join(frame(TEXT, b"m%d" % i) for i in range(3)))
        assert transport.reading
        driver.data_received(frame(TEXT, b"m3") + frame(TEXT, b"m4"))
        assert not transport.reading  # 5 queued >= 4
        assert await driver.receive() == "m0"
        assert not transport.reading  # 4 still queued
        assert await driver.receive() == "m1"
        assert transport.reading  # 3 < 4
        assert [await driver.receive() for _ in range(3)] == ["m2", "m3", "m4"]

    run(test)


def test_send_returns_only_once_the_transport_has_drained() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver()
        assert transport.limits == (0, 0)  # TCP: any buffered byte pauses us
        await driver.send("quick")  # nothing held: returns at once
        driver.pause_writing()
        sending = asyncio.ensure_future(driver.send(b"x" * 1000))
        await settle()
        assert not sending.done()
        assert transport.frames()[-1] == (BINARY, b"x" * 1000)
        driver.resume_writing()
        await settle()
        assert sending.done() and sending.result() is None

    run(test)


def test_messages_of_one_loop_pass_leave_in_one_write_in_order() -> None:
    """A burst (a broadcast of several messages) is one write per connection, at the end of
    the loop pass; a close frame after them keeps its place; BATCH_BYTES bounds the hold."""

    async def test() -> None:
        driver, transport, _ = make_driver()
        for i in range(3):
            assert driver.write_message(f"m{i}") is False
        assert transport.writes == 0
        await settle()
        assert transport.writes == 1
        assert transport.frames() == [(TEXT, b"m0"), (TEXT, b"m1"), (TEXT, b"m2")]
        driver.write_message("last")
        driver.close(1000)
        assert transport.frames() == [(TEXT, b"last"), (CLOSE, close_payload(1000))]
        driver, transport, _ = make_driver()
        driver.write_message(b"x" * BATCH_BYTES)  # at the bound: written at once
        assert transport.writes == 1

    run(test)


def test_sends_waiting_for_one_drain_all_return_when_it_comes() -> None:
    async def test() -> None:
        driver, _, _ = make_driver()
        driver.pause_writing()
        sends = [asyncio.ensure_future(driver.send("x")) for _ in range(3)]
        await settle()
        driver.resume_writing()
        await settle()
        assert all(s.done() for s in sends)

    run(test)


def test_a_drain_that_never_comes_ends_in_client_disconnected() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver(send_timeout=0.05)
        driver.pause_writing()
        with pytest.raises(ClientDisconnected):
            await driver.send("stuck")
        assert transport.aborted

    run(test)


# --- closing ----------------------------------------------------------------------------------


def test_shutdown_tells_the_app_and_the_client_1001() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver()
        waiting = asyncio.ensure_future(driver.receive())
        await settle()
        assert driver.close_if_idle() is False  # the server waits for the client's answer
        await settle()
        assert waiting.result() == Ended(1001, "server shutting down")
        ((opcode, payload),) = transport.frames()
        assert opcode == CLOSE and payload[:2] == (1001).to_bytes(2, "big")
        assert not transport.closed
        driver.data_received(frame(CLOSE, close_payload(1001)))
        assert transport.closed  # the handshake is complete: the server closes TCP

    run(test)


def test_send_after_the_close_raises_client_disconnected() -> None:
    async def test() -> None:
        driver, _, _ = make_driver()
        driver.close(1000)
        with pytest.raises(ClientDisconnected) as raised:
            await driver.send("late")
        assert isinstance(raised.value, OSError)

    run(test)


def test_a_close_the_client_never_answers_is_aborted_after_close_timeout() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver()
        before = driver.loop.time()
        driver.close(1000)
        assert before + CLOSE_TIMEOUT <= driver.deadline <= driver.loop.time() + CLOSE_TIMEOUT
        driver.on_deadline()
        assert transport.aborted  # not close(): buffered bytes would keep it for ever

    run(test)


def test_a_failed_connection_whose_close_does_not_leave_is_aborted() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver()
        driver.fail(1011)
        assert transport.closed and not transport.aborted
        assert driver.deadline <= driver.loop.time() + CLOSE_TIMEOUT
        driver.on_deadline()  # still not lost: the client takes nothing
        assert transport.aborted

    run(test)


def test_a_client_close_is_the_apps_disconnect_and_counts_end_at_connection_lost() -> None:
    async def test() -> None:
        driver, transport, state = make_driver()
        assert state.stats.websockets_open == 1 and driver in state.connections
        driver.data_received(frame(TEXT, b"hi"))
        await driver.send("back")
        driver.data_received(frame(CLOSE, close_payload(4000, "done")))
        assert await driver.receive() == "hi"
        assert await driver.receive() == Ended(4000, "done")
        assert transport.frames()[-1] == (CLOSE, close_payload(4000, "done"))
        assert transport.closed
        driver.connection_lost(None)
        assert state.stats.websockets_open == 0 and driver not in state.connections
        assert (state.stats.websocket_messages_in, state.stats.websocket_messages_out) == (1, 1)

    run(test)


def test_a_close_behind_messages_waits_until_the_app_has_had_them() -> None:
    """Autobahn 7.1.1: a message and a close in one write; the app's answer to the message
    goes out before the close is answered."""

    async def test() -> None:
        driver, transport, _ = make_driver(hold_close=True)
        driver.data_received(frame(TEXT, b"hi") + frame(CLOSE, close_payload(1000)))
        assert transport.frames() == [] and not transport.closed
        assert await driver.receive() == "hi"
        await driver.send("hi")
        assert await driver.receive() == Ended(1000, "")
        assert transport.frames() == [(TEXT, b"hi"), (CLOSE, close_payload(1000))]
        assert transport.closed

    run(test)


def test_a_held_close_is_answered_at_its_deadline_if_the_app_never_reads() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver(hold_close=True)
        driver.data_received(frame(TEXT, b"hi") + frame(CLOSE, close_payload(1001)))
        assert driver.deadline <= driver.loop.time() + CLOSE_TIMEOUT
        driver.on_deadline()
        assert transport.frames() == [(CLOSE, close_payload(1001))] and transport.closed

    run(test)


def test_a_vanished_client_is_1006_for_the_app() -> None:
    async def test() -> None:
        driver, _, _ = make_driver()
        waiting = asyncio.ensure_future(driver.receive())
        await settle()
        driver.connection_lost(ConnectionResetError())
        await settle()
        assert waiting.result() == Ended(1006, "")

    run(test)


# --- keepalive ----------------------------------------------------------------------------------


def test_no_pong_within_the_timeout_fails_with_1011() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver(ping_interval=1.0, ping_timeout=2.0)
        now = driver.loop.time()
        assert now < driver.deadline <= now + 1.0
        driver.on_deadline()  # the interval is up: a ping
        ((opcode, _),) = transport.frames()
        assert opcode == PING
        assert driver.deadline > driver.loop.time() + 1.0  # the timeout, not the interval
        driver.on_deadline()  # the timeout is up, no pong
        ((opcode, payload),) = transport.frames()
        assert (opcode, payload[:2]) == (CLOSE, (1011).to_bytes(2, "big"))
        assert transport.closed
        assert await driver.receive() == Ended(1011, "keepalive ping timeout")

    run(test)


def test_a_pong_keeps_the_connection_and_schedules_the_next_ping() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver(ping_interval=1.0, ping_timeout=2.0)
        driver.on_deadline()
        ((_, data),) = transport.frames()
        driver.data_received(frame(PONG, data))
        driver.on_deadline()  # the timeout is up, but the pong came
        assert not transport.closed
        assert driver.deadline <= driver.loop.time() + 1.0  # the next ping, one interval on

    run(test)


def test_an_unread_pong_is_not_a_missing_one() -> None:
    async def test() -> None:
        driver, transport, _ = make_driver(ping_interval=1.0, ping_timeout=2.0, max_queue=1)
        driver.data_received(frame(TEXT, b"fills the queue"))
        assert not transport.reading
        driver.on_deadline()
        transport.frames()
        driver.on_deadline()  # no pong seen: we did not read
        assert not transport.closed

    run(test)
