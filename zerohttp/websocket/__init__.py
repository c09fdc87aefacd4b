"""WebSocket (RFC 6455, RFC 7692): the opening handshake, the frame codec and the driver."""
