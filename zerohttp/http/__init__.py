"""The connection layer: reads request heads (fast reader or h11), writes heads and bodies,
keeps the connection's bookkeeping, and hands each request to a handler."""
