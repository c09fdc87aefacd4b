"""Body paths: zero-copy sendfile(2) with a corked head, and the aiofiles fallback."""
