"""The README's worked example of ``_headers`` and ``_redirects`` does what the README says.

The two files are taken from the README itself, so the documentation cannot drift from
what zerohttp does with them.
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest
from conftest import start_server

README = Path(__file__).resolve().parent.parent / "README.md"


def worked_example(name: str) -> str:
    """The README's code block that starts with ``# ROOT/<name>``."""
    blocks = re.findall(r"```\n(# ROOT/\w+.*?)```", README.read_text(), re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(f"# ROOT/{name}")]
    return block


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    (tmp_path / "_headers").write_text(worked_example("_headers"))
    (tmp_path / "_redirects").write_text(worked_example("_redirects"))
    (tmp_path / "index.html").write_text("<p>home</p>\n")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "site.css").write_text("p { color: red }\n")
    (tmp_path / "embed").mkdir()
    (tmp_path / "embed" / "player.html").write_text("<p>player</p>\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("<p>app shell</p>\n")
    return tmp_path


def fetch(port: int, path: str) -> http.client.HTTPResponse:
    """The response, its body read into ``response.body``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def test_the_worked_example(site: Path) -> None:
    with start_server(site, loop="asyncio") as server:
        port = server.port
        home = fetch(port, "/")
        assert home.status == 200
        assert home.getheader("X-Frame-Options") == "DENY"
        assert home.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"
        assert home.getheader("Cache-Control") is None

        asset = fetch(port, "/assets/site.css")
        assert asset.getheader("Cache-Control") == "public, max-age=31536000, immutable"
        assert asset.getheader("X-Frame-Options") == "DENY"

        embed = fetch(port, "/embed/player.html")
        assert embed.status == 200
        assert embed.getheader("X-Frame-Options") is None
        assert embed.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"

        moved = fetch(port, "/home")
        assert (moved.status, moved.getheader("Location")) == (301, "/")
        post = fetch(port, "/blog/2024/hello")
        assert (post.status, post.getheader("Location")) == (308, "/posts/2024-hello")
        docs = fetch(port, "/docs/guide/intro?lang=en")
        assert docs.status == 302
        assert docs.getheader("Location") == "https://docs.example.com/guide/intro?lang=en"

        route = fetch(port, "/app/settings/profile")
        assert route.status == 200
        assert route.getheader("Location") is None
        assert route.body == b"<p>app shell</p>\n"  # type: ignore[attr-defined]

        for rules_file in ("/_headers", "/_redirects"):
            assert fetch(port, rules_file).status == 404
