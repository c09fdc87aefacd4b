"""The message model's Response: fields as pairs, a cached rendering, the HEAD rule."""

from __future__ import annotations

import os

from zerohttp.message.response import (
    FileBody,
    RenderedFields,
    Response,
    error_response,
    omits_body,
    render_fields,
    rendered,
)
from zerohttp.static.handler import under_prefix

FIELDS = (("Content-Type", "text/plain"), ("Content-Length", "2"))


def test_field_lines_render_the_pairs_in_order() -> None:
    assert Response(200, FIELDS).field_lines() == (
        b"Content-Type: text/plain\r\nContent-Length: 2\r\n"
    )
    assert Response(204).field_lines() == b""


def test_a_cached_rendering_is_used_while_it_is_of_the_fields() -> None:
    cache = rendered(FIELDS)
    assert cache.data == render_fields(FIELDS)
    stale = RenderedFields(FIELDS, b"X-From-Cache: 1\r\n")  # to see which one is written
    response = Response(200, stale.fields, rendered=stale)
    assert response.field_lines() == b"X-From-Cache: 1\r\n"
    response.set_field("Content-Length", "3")
    assert response.field_lines() == b"Content-Type: text/plain\r\nContent-Length: 3\r\n"


def test_assigning_equal_but_new_fields_drops_the_rendering_too() -> None:
    stale = RenderedFields(FIELDS, b"X-From-Cache: 1\r\n")
    response = Response(200, stale.fields, rendered=stale)
    response.fields = (*response.fields, ("Vary", "Accept-Encoding"))
    assert response.field_lines() == render_fields(response.fields)


def test_field_is_the_last_value_of_any_case() -> None:
    response = Response(200, (("X-A", "1"), ("Location", "/a"), ("x-a", "2")))
    assert response.field("x-a") == "2"
    assert response.field("LOCATION") == "/a"
    assert response.field("Missing") is None


def test_set_field_replaces_the_first_removes_the_rest_or_appends() -> None:
    response = Response(200, (("X-A", "1"), ("B", "b"), ("x-a", "2")))
    response.set_field("x-A", "3")
    assert response.fields == (("X-A", "3"), ("B", "b"))
    response.set_field("C", "c")
    assert response.fields == (("X-A", "3"), ("B", "b"), ("C", "c"))


def test_only_head_omits_the_body() -> None:
    assert omits_body(b"HEAD")
    for method in (b"GET", b"POST", b"OPTIONS", b"head"):
        assert not omits_body(method)


def test_body_for_head_is_empty_and_releases_the_file() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    response = Response(200, FIELDS, FileBody(fd, os.devnull, (b"hi",)))
    assert response.body_for(b"GET") is response.body
    assert response.body_for(b"HEAD") == b""
    assert isinstance(response.body, FileBody) and response.body.fd == -1
    try:
        os.fstat(fd)
        closed = False
    except OSError:
        closed = True
    assert closed
    assert response.field_lines() == render_fields(FIELDS)  # GET's fields stay


def test_body_for_head_leaves_a_shared_bytes_body_alone() -> None:
    shared = error_response(405)
    assert shared.body_for(b"HEAD") == b""
    assert shared.body == b"405 Method Not Allowed\n"


def test_under_prefix_puts_a_root_relative_location_below_the_mount() -> None:
    redirect = error_response(308, [("Location", "/sub/?a=1")])
    assert under_prefix(redirect, "/static").field("Location") == "/static/sub/?a=1"
    assert under_prefix(error_response(308, [("Location", "/x/")]), "").field("Location") == "/x/"
    other = error_response(404)
    assert under_prefix(other, "/static").fields == error_response(404).fields
