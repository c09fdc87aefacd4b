"""How a connection ends: a lingering close where a reset could destroy the response.

After a response that ends the connection, the client may still be sending: an unread
body, requests pipelined behind a ``Connection: close``, a request we refused. Closing at
once would make the kernel answer those bytes with RST, which destroys the part of our
response the client has not read yet. So, like nginx's lingering close, the driver
half-closes and drops what still arrives until the client's EOF (usually one round trip),
LINGER_IDLE without a packet, or LINGER_TOTAL. Not when the client has closed already, nor
when the server closes on its own (a timeout: a slowloris gets none; a graceful shutdown,
which also ends the lingering ones at once rather than wait its grace for them).
"""

from __future__ import annotations

import asyncio

# How long a lingering close waits for the client's EOF before closing anyway: at most
# LINGER_IDLE seconds for each next packet and LINGER_TOTAL in all (nginx's
# lingering_timeout and lingering_time).
LINGER_IDLE = 5.0
LINGER_TOTAL = 30.0
# Connections refused over --limit-concurrency that may linger, and for how long.
REJECT_LINGER_MAX = 32
REJECT_LINGER_SECONDS = 1.0


def half_close(transport: asyncio.Transport) -> bool:
    """Send our FIN and keep reading (to drop what comes); False where there is no
    half-close (TLS)."""
    if not transport.can_write_eof():
        return False
    transport.write_eof()
    return True
