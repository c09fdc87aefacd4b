"""ASGI: the host that runs an application (``--app``) and the ``StaticFiles`` app."""
