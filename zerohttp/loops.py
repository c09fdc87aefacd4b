"""Event-loop choice: uvloop by default where it is installed, stock asyncio otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import ConfigError

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _uvloop_factory() -> LoopFactory | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_factory(name: str) -> tuple[str, LoopFactory]:
    """``(resolved name, factory)`` for ``auto``, ``uvloop`` or ``asyncio``."""
    if name == "asyncio":
        return "asyncio", asyncio.new_event_loop
    factory = _uvloop_factory()
    if factory is not None:
        return "uvloop", factory
    if name == "uvloop":
        raise ConfigError("--loop uvloop: uvloop is not installed")
    return "asyncio", asyncio.new_event_loop
