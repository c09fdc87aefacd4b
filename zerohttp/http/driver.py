"""The switch point between protocol drivers.

A driver is an ``asyncio.Protocol`` that owns one transport for one protocol: HTTP/1.1
(``connection.py``) today, WebSocket and HTTP/2 next. A driver can hand its transport to
another one, as uvicorn does with ``transport.set_protocol``: after a ``101 Switching
Protocols`` (a handler answers ``Upgrade``), or when a connection opens with a preface
registered in ``ServerState.prefaces`` (HTTP/2 by prior knowledge). The new driver gets
``connection_made`` and then the bytes the old one had read past the switch. A factory is
called with the ``ServerState``, so the new driver is a connection of the same server
(shutdown, ``--limit-concurrency``, the access log and the metrics).

A responder can switch too, once it has decided (``Exchange.switch``): the ASGI host's
WebSocket handshake waits for the application's ``websocket.accept``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..message.response import Response

# called with the ``ServerState`` (typed Any: server_state.py imports this module)
DriverFactory = Callable[[Any], asyncio.Protocol]


@dataclass(slots=True)
class Upgrade:
    """A handler's answer: send ``response`` (a 101), then hand the connection to the
    driver ``factory`` builds."""

    response: Response
    factory: DriverFactory


def switch_protocol(transport: asyncio.Transport, driver: asyncio.Protocol, data: bytes) -> None:
    """Hand ``transport`` to ``driver``, with the bytes already read past the switch."""
    transport.set_protocol(driver)
    driver.connection_made(transport)
    if data:
        driver.data_received(data)


def preface_state(buffer: bytes, prefaces: dict[bytes, DriverFactory]) -> DriverFactory | bool:
    """The driver whose preface ``buffer`` starts with; True while ``buffer`` is still a
    proper prefix of one (wait for more bytes); False when it is none of them."""
    for preface, factory in prefaces.items():
        if buffer.startswith(preface):
            return factory
        if preface.startswith(buffer):
            return True
    return False
