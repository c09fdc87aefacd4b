"""Listening sockets that are not a plain host:port: a unix socket (``--uds``), a socket
inherited by number (``--fd``), and systemd socket activation (``LISTEN_FDS``).

All three end as one listening socket object that the server (or every worker, which
inherits it across ``fork``) accepts on.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Mapping

from .errors import ConfigError

SD_LISTEN_FDS_START = 3


def systemd_listen_fd(environ: Mapping[str, str], pid: int) -> int | None:
    """The first socket systemd passed us (sd_listen_fds(3)), or None.

    ``LISTEN_PID`` must name this process: the variables may have been inherited by a
    process they were not meant for.
    """
    if environ.get("LISTEN_PID") != str(pid):
        return None
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    return SD_LISTEN_FDS_START if count >= 1 else None


def parse_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise ConfigError(f"--uds-mode {text!r}: expected an octal mode such as 660") from None
    if not 0 <= mode <= 0o777:
        raise ConfigError(f"--uds-mode {text!r}: expected an octal mode such as 660")
    return mode


def bind_unix(path: str, mode: int, backlog: int) -> socket.socket:
    """A listening unix socket at ``path``; a stale socket file left by a crash is
    replaced, a live one (something accepts on it) or any other file is an error."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)  # nobody listens: a leftover
            else:
                raise ConfigError(f"--uds {path}: another server is listening on it")
            finally:
                probe.close()
        else:
            raise ConfigError(f"--uds {path}: exists and is not a socket")
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--uds {path}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def adopt_fd(fd: int) -> socket.socket:
    """The listening socket open as descriptor ``fd`` (from systemd or a parent process)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        reason = "not an open socket" if exc.errno in (errno.EBADF, errno.ENOTSOCK) else exc
        raise ConfigError(f"--fd {fd}: {reason}") from None
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ConfigError(f"--fd {fd}: the socket is not listening")
    sock.setblocking(False)
    return sock


def describe(sock: socket.socket, scheme: str) -> tuple[str, str, int]:
    """(URL for the banner, host, port); a unix socket is ``unix:PATH`` with port 0."""
    if sock.family == socket.AF_UNIX:
        path = sock.getsockname()
        return f"unix:{path}", str(path), 0
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/", str(host), int(port)
