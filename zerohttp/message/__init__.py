"""The HTTP message model every layer shares: request heads, responses, bodies, dates.

It sits at the bottom, above ``errors`` only: the protocol drivers (``http``), the body
senders (``body``) and the handlers (``static``, ``asgi``) all speak it, and it imports
none of them.
"""
