"""What CORS is for, shown in a real browser: headless Chromium loads a page from one origin
(a zerohttp on port A) that takes a JavaScript module and a font from zerohttp on port B.

A module script and a font are always fetched in CORS mode, so without
``--cors-allow-origin http://127.0.0.1:A`` on B the browser refuses both (the module never
runs, the font never loads); with it, the page's DOM shows that both arrived. Skipped only
when Chromium is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import start_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FONTS = [
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    *sorted(Path("/usr/share/fonts").rglob("*.ttf")),
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cors</title></head><body>
<p id="module">module blocked</p>
<p id="font">font pending</p>
<p id="fetch">fetch pending</p>
<script type="module" src="{other}/mod.js"></script>
<script>
const show = (id, text) => {{ document.getElementById(id).textContent = text; }};
new FontFace("Remote", "url({other}/font.ttf)").load().then(
  (face) => show("font", "font loaded " + face.status),
  () => show("font", "font blocked"));
fetch("{other}/data.json", {{mode: "cors"}}).then((r) => r.json()).then(
  (data) => show("fetch", "fetch read " + data.hello),
  () => show("fetch", "fetch blocked"));
</script>
</body></html>
"""


def font_file() -> Path | None:
    return next((font for font in FONTS if font.is_file()), None)


def dump_dom(url: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--virtual-time-budget=5000",  # let the fetches settle before the dump
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def sites(tmp_path: Path) -> tuple[Path, Path]:
    page_root = tmp_path / "page"
    assets = tmp_path / "assets"
    page_root.mkdir()
    assets.mkdir()
    (assets / "mod.js").write_text(
        'document.getElementById("module").textContent = "module ran";\n'
    )
    (assets / "data.json").write_text('{"hello": "world"}\n')
    font = font_file()
    if font is not None:
        shutil.copyfile(font, assets / "font.ttf")
    return page_root, assets


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "not-allowed"])
def test_a_page_on_another_origin_loads_a_module_and_a_font(
    sites: tuple[Path, Path], allowed: bool
) -> None:
    page_root, assets = sites
    with start_server(page_root) as page:
        origin = page.base_url  # http://127.0.0.1:A
        cors = {"cors_allow_origin": (origin,)} if allowed else {}
        with start_server(assets, **cors) as other:
            (page_root / "index.html").write_text(PAGE.format(other=other.base_url))
            dom = dump_dom(page.url("/index.html"))
    has_font = (assets / "font.ttf").exists()
    if allowed:
        assert "module ran" in dom, dom
        assert "fetch read world" in dom, dom
        if has_font:
            assert "font loaded loaded" in dom, dom
    else:
        assert "module blocked" in dom, dom
        assert "fetch blocked" in dom, dom
        if has_font:
            assert "font blocked" in dom, dom
