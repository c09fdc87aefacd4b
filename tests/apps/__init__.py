"""ASGI applications the conformance battery hosts (``apps.conformance:app`` from tests/)."""
