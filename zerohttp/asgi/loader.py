"""``--app module:attr``: find the application object, as uvicorn does, with one-line errors."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def import_from_string(spec: str) -> Any:
    """``package.module:attr.sub`` -> the object; the current directory is importable."""
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise ConfigError(f"--app {spec!r}: expected MODULE:ATTRIBUTE, e.g. main:app")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(f"--app {spec!r}: no module named {module_name!r}") from None
        raise ConfigError(f"--app {spec!r}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise ConfigError(
            f"--app {spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    found: Any = module
    for attr in attrs.split("."):
        try:
            found = getattr(found, attr)
        except AttributeError:
            raise ConfigError(f"--app {spec!r}: {module_name!r} has no {attrs!r}") from None
    return found


def is_asgi3(app: Any) -> bool:
    """An ASGI 3 app is a coroutine function, or an object with an async ``__call__``;
    an ASGI 2 app is a callable (typically a class) taking the scope alone."""
    if inspect.isclass(app):
        return False
    if inspect.iscoroutinefunction(app):
        return True
    return inspect.iscoroutinefunction(getattr(app, "__call__", None))  # noqa: B004


class ASGI2Adapter:
    """Runs an ASGI 2 (double-callable) application behind the ASGI 3 interface."""

    def __init__(self, app: Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope)(receive, send)


_loaded: dict[tuple[str, bool], ASGIApp] = {}


def load_app(app: Any, *, factory: bool = False) -> ASGIApp:
    """The ASGI 3 callable for ``app`` (an object or an import string); an import string
    is loaded (and its factory called) once per process."""
    if isinstance(app, str):
        key = (app, factory)
        if key not in _loaded:
            _loaded[key] = _load(app, factory=factory)
        return _loaded[key]
    return _load(app, factory=factory)


def _load(app: Any, *, factory: bool) -> ASGIApp:
    if isinstance(app, str):
        found = import_from_string(app)
        name = app
    else:
        found, name = app, getattr(app, "__qualname__", type(app).__name__)
    if factory:
        try:
            found = found()
        except TypeError as exc:
            raise ConfigError(f"--factory: calling {name!r} failed: {exc}") from None
    if not callable(found):
        raise ConfigError(f"--app {name!r}: is not callable, so not an ASGI application")
    if is_asgi3(found):
        return found  # type: ignore[no-any-return]
    return ASGI2Adapter(found)
