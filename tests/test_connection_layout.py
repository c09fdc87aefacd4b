"""HTTPConnection keeps the compact attribute layout CPython gives instances of up to 29
attributes: one attribute more (a health-check reference, kept for one attribute test)
grew every connection by ~1.3 KB and cost 2-4 % of the small-file rate. A structural check,
not a timing: the rate itself is measured in benchmarks/ (ab_static.py)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import sys
import textwrap
from pathlib import Path

from zerohttp.config import Config
from zerohttp.http.connection import HTTPConnection, ServerState
from zerohttp.static.handler import StaticHandler

COMPACT_MAX = 29  # CPython's shared-keys instances hold at most this many attributes


def _connection(config: Config) -> HTTPConnection:
    async def make() -> HTTPConnection:
        state = ServerState(config, StaticHandler(config), zero_copy=True)
        return HTTPConnection(state)

    return asyncio.run(make())


def test_a_connection_has_no_more_attributes_than_the_compact_layout_holds(tmp_path: Path) -> None:
    connection = _connection(Config(root=str(tmp_path), health_path="/healthz"))
    assert len(vars(connection)) <= COMPACT_MAX, sorted(vars(connection))


def test_a_second_connection_stays_compact(tmp_path: Path) -> None:
    """What the layout is worth: the attribute dict of a connection stays small."""
    config = Config(root=str(tmp_path))
    _connection(config)
    connection = _connection(config)
    assert sys.getsizeof(connection.__dict__) < 1024


def test_every_attribute_is_set_in_init() -> None:
    """One set later (on a refused request, say) would be a 30th key for that instance."""
    source = inspect.getsource(HTTPConnection)
    tree = ast.parse(textwrap.dedent(source))
    assigned: dict[str, set[str]] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else [node.target]
                    if isinstance(node, ast.AnnAssign | ast.AugAssign)
                    else []
                )
                for target in targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "self"
                    ):
                        assigned.setdefault(function.name, set()).add(target.attr)
    in_init = assigned.pop("__init__")
    later = set().union(*assigned.values()) - in_init
    assert not later, f"set outside __init__: {sorted(later)}"
