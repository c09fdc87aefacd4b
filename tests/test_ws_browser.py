"""The chat example in a real browser: headless Chromium loads examples/chat/index.html from
``zerohttp --app examples.ws_chat:app --mount /static=examples/chat`` and the page's own
script chats over ``new WebSocket()``, with another tab and with a Python client.

Chromium is driven through its DevTools protocol (a WebSocket itself, spoken here with the
``websockets`` client): a tab is opened, navigated, and JavaScript is evaluated in it to
type into the page's form and to wait until the page's log shows what it received. So what
is tested is the page a user gets: its history read from ``GET /api/messages``, the
``ws://`` or ``wss://`` URL it derives from its own address, its rendering of events.

Over TLS, Chromium is told to trust the test certificate's key by its SPKI hash
(``--ignore-certificate-errors-spki-list``): trustme's CA is not in Chromium's NSS store
and installing it there needs certutil. The flag only accepts a chain whose key matches
that hash, not every certificate error. Skipped only when Chromium is not installed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import itertools
import json
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from serverprocs import free_port
from test_ws_example import chat_server, joined, left, on, said, unique, wait_for
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")

# From the machine notes: without the background-networking flags Chromium keeps trying to
# reach Google's hosts, which this closed network refuses. The backgrounding flags keep a
# tab that is not in front running its timers and sockets at full speed.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--remote-debugging-port=0",
]
WAIT = 30.0  # seconds: for Chromium to start, a page to load, a message to arrive

# Evaluated in a tab before each check: poll ``test`` until it holds, else reject with the
# page's text, so a failure shows what the user would have seen.
WAIT_FOR_JS = """
window.waitFor = (test, ms) => new Promise((resolve, reject) => {
  const start = Date.now();
  const tick = () => {
    let value;
    try { value = test(); } catch (error) { value = undefined; }
    if (value) resolve(value);
    else if (Date.now() - start > ms) reject(new Error("timed out; the page shows: "
      + document.getElementById("status").textContent + " | "
      + [...document.querySelectorAll("#log li")].map((li) => li.textContent).join(" | ")));
    else setTimeout(tick, 25);
  };
  tick();
});
"""


class Tab:
    """One Chromium tab, over its DevTools WebSocket."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.connection.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.connection.recv(timeout=WAIT))
            if message.get("id") == number:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_event(self, method: str) -> dict[str, Any]:
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(json.loads(self.connection.recv(timeout=WAIT)))

    def goto(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        self.evaluate(WAIT_FOR_JS)

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (awaited if it is a promise); a JS error fails."""
        reply = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def wait_until(self, condition: str) -> Any:
        return self.evaluate(f"waitFor(() => {condition}, {WAIT * 1000 - 5000})")

    def log_has(self, kind: str, text: str) -> Any:
        """Wait until the page's log has an item of class ``kind`` reading ``text``."""
        condition = (
            f'[...document.querySelectorAll("#log li.{kind}")]'
            f".some((li) => li.textContent === {json.dumps(text)})"
        )
        return self.wait_until(condition)

    def say(self, text: str) -> None:
        """Type into the page's form and submit it, as a user would."""
        self.wait_until('!document.getElementById("text").disabled')
        self.evaluate(
            f'document.getElementById("text").value = {json.dumps(text)};'
            'document.getElementById("say").requestSubmit(); true'
        )


class Chromium:
    """A running Chromium's DevTools endpoint; tabs' connections close with ``tabs``."""

    def __init__(self, port: int, tabs: contextlib.ExitStack) -> None:
        self.port = port
        self.tabs = tabs

    def open(self, url: str) -> Tab:
        """A new tab (DevTools' HTTP endpoint ``PUT /json/new``) that has loaded ``url``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            conn.request("PUT", "/json/new?about:blank")
            target = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        debugger = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=WAIT)
        tab = Tab(self.tabs.enter_context(debugger))
        tab.goto(url)
        return tab


@contextlib.contextmanager
def chromium(*extra: str) -> Iterator[Chromium]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile, tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, *extra, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            active = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + WAIT
            while not (active.exists() and active.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"chromium did not start: {log.read()[-3000:]!r}")
                time.sleep(0.05)
            with contextlib.ExitStack() as tabs:
                yield Chromium(int(active.read_text().split()[0]), tabs)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_two_tabs_and_a_python_client_chat_through_the_page() -> None:
    early, ann, ben, py = unique("early"), unique("ann"), unique("ben"), unique("py")
    with chat_server() as server, chromium() as browser:
        with connect(f"ws://127.0.0.1:{server.port}/ws/chat?name={early}") as before:
            before.send("said before the page opened")
            wait_for(on(before), said(early, "said before the page opened"))
        with connect(f"ws://127.0.0.1:{server.port}/ws/chat?name={py}") as python:
            wait_for(on(python), joined(py))
            a = browser.open(f"{server.base_url}/static/index.html?name={ann}")
            a.log_has("history", f"{early}: said before the page opened")  # GET /api/messages
            a.wait_until('document.getElementById("status").textContent === "connected"')
            wait_for(on(python), joined(ann))
            b = browser.open(f"{server.base_url}/?name={ben}")  # the app's redirect to the page
            a.log_has("join", f"{ben} joined (3 online)")

            a.say("hello from a tab")
            b.log_has("message", f"{ann}: hello from a tab")
            wait_for(on(python), said(ann, "hello from a tab"))
            python.send("hello from python")
            a.log_has("message", f"{py}: hello from python")
            b.log_has("message", f"{py}: hello from python")

            b.call("Page.navigate", url="about:blank")  # ben leaves the page: its socket closes
            wait_for(on(python), left(ben))
            a.log_has("leave", f"{ben} left (2 online)")


def spki_hash(certificate_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_over_tls_the_page_chats_over_wss(tmp_path: Path) -> None:
    """An https:// page may only open wss:// (a ws:// socket is blocked as mixed content),
    so "connected" means the page derived wss:// from its address and the TLS socket works."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    leaf.cert_chain_pems[0].write_to_path(cert)
    leaf.private_key_pem.write_to_path(key)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    trust_the_leaf = f"--ignore-certificate-errors-spki-list={spki_hash(Path(cert).read_bytes())}"
    tls = ["--ssl-certfile", cert, "--ssl-keyfile", key]
    tom, py = unique("tom"), unique("py")
    with chat_server(*tls, port=free_port()) as server, chromium(trust_the_leaf) as browser:
        base = f"127.0.0.1:{server.port}"
        with connect(f"wss://{base}/ws/chat?name={py}", ssl=client_tls) as python:
            wait_for(on(python), joined(py))
            tab = browser.open(f"https://{base}/static/index.html?name={tom}")
            assert tab.evaluate("location.protocol") == "https:"
            tab.wait_until('document.getElementById("status").textContent === "connected"')
            wait_for(on(python), joined(tom))
            tab.say("hello over wss")
            wait_for(on(python), said(tom, "hello over wss"))
            tab.log_has("message", f"{tom}: hello over wss")
            python.send("and back")
            tab.log_has("message", f"{py}: and back")
