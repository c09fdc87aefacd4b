"""examples/ws_chat.py runs as its docstring says, under ``zerohttp --app`` in a process of
its own, and chats with real clients: two ``websockets`` clients (its sans-IO protocol, the
library uvicorn uses) and an httpx-ws client (wsproto underneath, through httpx).

One server serves the whole module, so the room is shared: every test joins under names of
its own and waits for the events it expects, skipping others' (a leave notice of an earlier
test's client may still be on its way).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from httpx_ws import connect_ws
from serverprocs import REPO, ServerProcess, fetch, server_process
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

CHAT_DIR = REPO / "examples" / "chat"
COMMAND = ["-m", "zerohttp", "--app", "examples.ws_chat:app", "--mount", "/static=examples/chat"]
WAIT = 15.0  # seconds for one event to arrive; generous, the box is shared and noisy

Event = dict[str, Any]
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@contextlib.contextmanager
def chat_server(*extra: str, port: int | None = None) -> Iterator[ServerProcess]:
    """The example as the README runs it; its log must hold no traceback at the end."""
    args = [*COMMAND, *extra, "--port", str(port or 0)]
    with server_process(args, port=port) as server:
        yield server
        output = server.output()
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def chat() -> Iterator[ServerProcess]:
    with chat_server() as server:
        yield server


def ws_url(server: ServerProcess, name: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/chat?name={name}"


def wait_for(receive: Callable[[], str], wanted: Callable[[Event], bool]) -> Event:
    """The first event ``wanted`` accepts; others are skipped. ``receive`` raises on timeout."""
    while True:
        event: Event = json.loads(receive())
        if wanted(event):
            return event


def joined(name: str) -> Callable[[Event], bool]:
    return lambda event: event["type"] == "join" and event["name"] == name


def left(name: str) -> Callable[[Event], bool]:
    return lambda event: event["type"] == "leave" and event["name"] == name


def said(name: str, text: str) -> Callable[[Event], bool]:
    return lambda event: event == {"type": "message", "name": name, "text": text}


def on(client: ClientConnection) -> Callable[[], str]:
    def receive() -> str:
        message = client.recv(timeout=WAIT)
        assert isinstance(message, str), message
        return message

    return receive


def recent_messages(server: ServerProcess) -> Sequence[Event]:
    reply = fetch(server.base_url, "GET", "/api/messages")
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/json"
    messages: list[Event] = json.loads(reply.body)
    return messages


def test_the_page_is_served_by_the_mount_and_the_root_points_to_it(chat: ServerProcess) -> None:
    for name in ("index.html", "chat.js"):
        reply = fetch(chat.base_url, "GET", f"/static/{name}")
        assert reply.status == 200 and reply.body == (CHAT_DIR / name).read_bytes()
        assert "etag" in reply.headers  # zerohttp's static handler, not the app (it has none)
    assert (
        fetch(chat.base_url, "GET", "/static/chat.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    root = fetch(chat.base_url, "GET", "/")
    assert root.status == 307 and root.headers["location"] == "/static/index.html"
    page = (CHAT_DIR / "index.html").read_text()
    assert '<script src="chat.js">' in page


def test_two_clients_see_each_others_join_messages_and_leave(chat: ServerProcess) -> None:
    alice, bob = unique("alice"), unique("bob")
    with connect(ws_url(chat, alice)) as a:
        assert wait_for(on(a), joined(alice))["online"] >= 1
        with connect(ws_url(chat, bob)) as b:
            wait_for(on(b), joined(bob))  # a joiner hears its own join first
            wait_for(on(a), joined(bob))
            a.send("hello from alice")
            wait_for(on(a), said(alice, "hello from alice"))  # the sender hears it too
            wait_for(on(b), said(alice, "hello from alice"))
            b.send("héllo, ✓ from bob")
            wait_for(on(b), said(bob, "héllo, ✓ from bob"))
            wait_for(on(a), said(bob, "héllo, ✓ from bob"))
        wait_for(on(a), left(bob))
    texts = [(m["name"], m["text"]) for m in recent_messages(chat)]
    assert texts[-2:] == [(alice, "hello from alice"), (bob, "héllo, ✓ from bob")]
    assert all(m["type"] == "message" for m in recent_messages(chat))  # no join/leave there


def test_a_guest_without_a_name_gets_one(chat: ServerProcess) -> None:
    with connect(f"ws://127.0.0.1:{chat.port}/ws/chat") as guest:
        event = wait_for(on(guest), lambda event: event["type"] == "join")
        assert event["name"].startswith("guest-")


def test_an_httpx_ws_client_chats_with_a_websockets_client(chat: ServerProcess) -> None:
    carol, dave = unique("carol"), unique("dave")
    with connect(ws_url(chat, carol)) as c, httpx.Client(base_url=chat.base_url) as http:
        wait_for(on(c), joined(carol))
        with connect_ws(f"/ws/chat?name={dave}", http) as d:

            def dave_receives() -> str:
                return d.receive_text(timeout=WAIT)

            wait_for(dave_receives, joined(dave))
            wait_for(on(c), joined(dave))
            d.send_text("from httpx-ws")
            wait_for(on(c), said(dave, "from httpx-ws"))
            c.send("to httpx-ws")
            wait_for(dave_receives, said(carol, "to httpx-ws"))
            assert http.get("/api/messages").json()[-1] == {
                "type": "message",
                "name": carol,
                "text": "to httpx-ws",
            }
        wait_for(on(c), left(dave))


def test_a_binary_message_is_refused_with_1003(chat: ServerProcess) -> None:
    name = unique("bytes")
    with connect(ws_url(chat, name)) as client:
        wait_for(on(client), joined(name))
        client.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed):
            wait_for(on(client), lambda event: False)
    assert (client.close_code, client.close_reason) == (1003, "text messages only")


def test_sigterm_closes_the_chat_with_1001_going_away() -> None:
    """As the README says: the clients get 1001, the app its disconnect, the process exits 0."""
    eve, fay = unique("eve"), unique("fay")
    with (
        chat_server() as server,
        connect(ws_url(server, eve)) as e,
        connect(ws_url(server, fay)) as f,
    ):
        wait_for(on(e), joined(fay))
        server.proc.send_signal(signal.SIGTERM)
        for client in (e, f):
            with pytest.raises(ConnectionClosed):
                wait_for(on(client), lambda event: False)
            assert client.close_code == 1001, client.close_reason
        assert server.proc.wait(WAIT) == 0
