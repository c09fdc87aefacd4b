"""The ``--autoindex`` HTML directory listing, rendered from plain data.

Names are HTML-escaped where shown and percent-encoded (every reserved character, ``:``
included, behind ``./``) where linked, so no file name can inject markup or turn a link
into a ``javascript:`` URL.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from ..message.dates import http_date


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


def sort_entries(entries: Sequence[Entry]) -> list[Entry]:
    """Directories first, then files, each by name (case-insensitively, then exactly)."""
    return sorted(entries, key=lambda e: (not e.is_dir, e.name.casefold(), e.name))


def _shown(name: str) -> str:
    """A name as text: bytes that are not UTF-8 (surrogate-escaped by os.scandir) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _row(entry: Entry) -> str:
    suffix = "/" if entry.is_dir else ""
    href = "./" + quote(entry.name, safe="", errors="surrogateescape") + suffix
    size = "-" if entry.is_dir else str(entry.size)
    return (
        f'<tr><td><a href="{html.escape(href)}">{html.escape(_shown(entry.name))}{suffix}</a></td>'
        f'<td class="size">{size}</td><td>{http_date(entry.mtime)}</td></tr>'
    )


def render_listing(url_path: str, entries: Sequence[Entry]) -> bytes:
    """The listing page for ``url_path`` (the decoded path, ending in ``/``)."""
    title = html.escape(f"Index of {_shown(url_path)}")
    parent = "" if url_path == "/" else '<tr><td><a href="../">../</a></td><td></td><td></td></tr>'
    rows = "\n".join(_row(entry) for entry in sort_entries(entries))
    page = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:2rem}}td{{padding:0 1rem 0 0}}
.size{{text-align:right}}</style></head>
<body>
<h1>{title}</h1>
<table>
<thead><tr><th>Name</th><th>Size</th><th>Last modified</th></tr></thead>
<tbody>
{parent}
{rows}
</tbody>
</table>
</body>
</html>
"""
    return page.encode("utf-8")
