"""The ASGI lifespan protocol: startup before the first connection, shutdown after the last.

``auto`` follows uvicorn: an application that raises before answering startup does not
speak lifespan, so the server serves without it; ``on`` makes that an error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from ..errors import ConfigError
from .loader import ASGIApp, Message

logger = logging.getLogger("zerohttp")

LifespanMode = Literal["auto", "on", "off"]


class Lifespan:
    """Runs one application's lifespan task on the current loop."""

    def __init__(self, app: ASGIApp, mode: LifespanMode) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = False  # startup completed: shutdown will be sent
        self._received = False  # the app asked for a lifespan message: it speaks the protocol
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._answer: asyncio.Future[Message] | None = None
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Raises ConfigError if the application says startup failed (or, with ``on``,
        does not speak lifespan)."""
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self._task = loop.create_task(self._main())
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._answer
        kind = answer.get("type")
        if kind == "lifespan.startup.complete":
            self.supported = True
            return
        if kind == "lifespan.startup.failed" or self.mode == "on":
            await self._stop()
            if kind == "lifespan.error" and not self._received:
                raise ConfigError(
                    f"--lifespan on: the application does not speak the ASGI lifespan "
                    f"protocol (it raised {answer['message']} before asking for a message); "
                    "use --lifespan auto or off"
                )
            raise ConfigError(f"application startup failed: {answer.get('message', '')}")
        logger.info("ASGI 'lifespan' protocol appears unsupported.")

    async def _stop(self) -> None:
        """End the lifespan task (it may still wait on ``receive``) before the loop closes."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])

    async def shutdown(self) -> None:
        if not self.supported or self._task is None:
            return
        self._answer = asyncio.get_running_loop().create_future()
        await self._inbox.put({"type": "lifespan.shutdown"})
        answer = await self._answer
        if answer.get("type") == "lifespan.shutdown.failed":
            logger.error("application shutdown failed: %s", answer.get("message", ""))
        await asyncio.wait([self._task], timeout=1.0)
        await self._stop()

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise  # ended by _stop(): nothing to report
        except Exception as exc:
            if self._received and (self.mode == "on" or self.supported):
                logger.exception("exception in the ASGI lifespan task")
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._reply({"type": "lifespan.error", "message": why})
        finally:
            self._reply({"type": "lifespan.ended", "message": "the lifespan task returned"})

    async def _receive(self) -> Message:
        self._received = True
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
        self._reply(message)

    def _reply(self, message: Message) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(message)
