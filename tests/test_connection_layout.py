"""The per-connection objects keep a fixed, compact layout: ``__slots__`` all the way up,
no instance ``__dict__``. Before slots, one attribute past CPython's 29-key shared layout
grew every connection by ~1.3 KB and cost 2-4 % of the small-file rate (benchmarks/
RESULTS.md, issue 16). A structural check, not a timing: the rate itself is measured in
benchmarks/ (ab_static.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zerohttp.config import Config
from zerohttp.http.connection import HTTPConnection, ServerState
from zerohttp.http.filesender import FileSender
from zerohttp.http.flow import FlowControl
from zerohttp.static.handler import StaticHandler


def _connection(config: Config) -> HTTPConnection:
    async def make() -> HTTPConnection:
        state = ServerState(config, StaticHandler(config), zero_copy=True)
        return HTTPConnection(state)

    return asyncio.run(make())


def test_a_connection_has_no_instance_dict(tmp_path: Path) -> None:
    connection = _connection(Config(root=str(tmp_path), health_path="/healthz"))
    assert not hasattr(connection, "__dict__")
    with pytest.raises(AttributeError):
        connection.stray = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("unit", ["flow", "sender"])
def test_its_units_have_none_either(tmp_path: Path, unit: str) -> None:
    connection = _connection(Config(root=str(tmp_path)))
    part = getattr(connection, unit)
    assert isinstance(part, FlowControl | FileSender)
    assert not hasattr(part, "__dict__")


def test_every_slot_is_set_in_init(tmp_path: Path) -> None:
    """A slot left unset would raise AttributeError the first time a path reads it."""
    connection = _connection(Config(root=str(tmp_path)))
    for part in (connection, connection.flow, connection.sender):
        slots = [n for c in type(part).__mro__ for n in getattr(c, "__slots__", ())]
        assert len(slots) > 5, type(part)
        for name in slots:
            getattr(part, name)
