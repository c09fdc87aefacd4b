"""``zerohttp.StaticFiles`` as a drop-in for ``starlette.staticfiles.StaticFiles``."""

from __future__ import annotations

from zerohttp.static.files import FileResolver


def test_resolver_admits_by_resolved_path() -> None:
    """The containment decision alone, on plain strings (the root need not exist)."""
    strict = FileResolver("/nonexistent-root/site")
    follow = FileResolver("/nonexistent-root/site", follow_symlinks=True)
    for resolver in (strict, follow):
        assert resolver.admits("/nonexistent-root/site")
        assert resolver.admits("/nonexistent-root/site/a/b.txt")
        assert not resolver.admits("/nonexistent-root/site/.git/config")  # hidden inside
        assert not resolver.admits("/nonexistent-root/site/a/.env")
    for outside in ("/etc/passwd", "/nonexistent-root/site2/x", "/nonexistent-root/.x/y"):
        assert not strict.admits(outside)
        assert follow.admits(outside)  # only a symlink can lead there
