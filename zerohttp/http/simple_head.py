"""A strict reader for the one request shape a static server sees most; h11 reads the rest.

h11 costs ~11 µs to parse a request (a new ``Connection``, its receive buffer, event
objects, header validation in Python), which alone caps a keep-alive server on one core
below Granian's figure. Nearly every request to a static server is the same shape: a GET or
HEAD of an origin-form target, HTTP/1.1 or 1.0, a complete head in the buffer, no body. This
module recognises exactly that shape with two compiled regular expressions (~1 µs) and
returns what h11 would have returned for it.

It is a strict subset of h11's grammar (``h11/_abnf.py``), never a second opinion: anything
outside it — another method, a body or framing header (Content-Length, Transfer-Encoding),
Expect, obs-fold, bare LF line ends, leading blank lines, a missing or repeated Host, a head
still arriving or larger than the limit, control characters or whitespace h11 would have to
judge — returns None and the connection hands the bytes to h11 unchanged. The
differential property test (``tests/test_simple_head.py``) checks that on every input this
either declines or agrees with h11 exactly: method, target, version, lower-cased header
names and values, and the bytes left over.
"""

from __future__ import annotations

import re

from ..message.response import RequestHead
from .http11 import keep_alive_requested

# request-line = method SP request-target SP HTTP-version, restricted to GET/HEAD,
# origin-form and 1.0/1.1 (h11: token, 1*VCHAR, HTTP/DIGIT.DIGIT).
_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[\x21-\x7e]*) HTTP/(1\.[01])")

# field-name ":" OWS field-value OWS, one per line, each line preceded by CRLF. The value
# is VCHAR / obs-text with SP/HTAB inside; its trailing OWS is stripped after matching
# (a regex that excludes it backtracks and costs twice as much). h11 also admits other
# control characters, which are left to it.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_FIELD = rb"\r\n(" + _TOKEN + rb"):[ \t]*([\x20\x09\x21-\x7e\x80-\xff]*)"
_FIELDS = re.compile(rb"(?:" + _FIELD + rb")*")
_FIELD_RE = re.compile(_FIELD)

# Header names whose presence needs h11's judgement or a body-reading cycle.
_DECLINED = frozenset({b"content-length", b"transfer-encoding", b"expect"})

END_OF_HEAD = b"\r\n\r\n"


def read_simple_head(buffer: bytes, max_head: int) -> tuple[RequestHead, int, bool] | None:
    """The request at the start of ``buffer``, the bytes it used and whether the client
    asked to keep the connection (RFC 9112 §9.3), or None to ask h11."""
    end = buffer.find(END_OF_HEAD, 0, max_head)
    if end < 0:
        return None
    line_end = buffer.find(b"\r\n")
    line = _REQUEST_LINE.fullmatch(buffer, 0, line_end)
    if line is None:
        return None
    if _FIELDS.fullmatch(buffer, line_end, end) is None:
        return None
    fields = _FIELD_RE.findall(buffer, line_end, end)
    headers = tuple([(name.lower(), value.rstrip(b" \t")) for name, value in fields])
    hosts = 0
    connection = None
    for name, value in headers:
        if name in _DECLINED:
            return None
        if name == b"host":
            hosts += 1
        elif name == b"connection":
            connection = value if connection is None else connection + b"," + value
    if hosts != 1:
        return None
    method, target, version = line.groups()
    keep_alive = keep_alive_requested(version, connection)
    return RequestHead(method, target, version, headers), end + 4, keep_alive
