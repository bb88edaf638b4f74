"""Strict HTTP/1.1 framing (modelmon.framing): every ambiguous request is refused."""

from __future__ import annotations

import http.client
import io

import pytest

from modelmon.framing import HUGE_LENGTH, FramingError, check_framing, content_length


def parse(lines: list[bytes]) -> tuple[http.client.HTTPMessage, list[bytes]]:
    """Headers as the standard library parses them, and the raw lines it read."""
    raw = b"".join(lines) + b"\r\n"
    stream = io.BytesIO(raw)
    read: list[bytes] = []

    class Recorder:
        def readline(self, limit: int = -1) -> bytes:
            line = stream.readline(limit)
            read.append(line)
            return line

    headers = http.client.parse_headers(Recorder())  # type: ignore[arg-type]
    return headers, read


def status(method: str, *lines: bytes) -> int | None:
    headers, raw = parse(list(lines))
    try:
        check_framing(method, headers, raw)
    except FramingError as exc:
        return exc.status
    return None


def test_a_plain_post_and_a_plain_get_pass() -> None:
    assert status("POST", b"Host: a\r\n", b"Content-Length: 12\r\n") is None
    assert status("GET", b"Host: a\r\n") is None
    assert status("GET", b"Host: a\r\n", b"Content-Length: 0\r\n") is None
    assert status("POST", b"Host: a\r\n") is None  # no length: the handler answers 411


@pytest.mark.parametrize(
    "lines",
    [
        [b"Transfer-Encoding: chunked \r\n"],  # trailing space: not exactly chunked
        [b"Transfer-Encoding: gzip, chunked\r\n"],
        [b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: chunked\r\n"],
        [b"Transfer-Encoding: identity\r\n"],
        [b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n"],
        [b"Transfer-Encoding: xchunked\r\n", b"Content-Length: 5\r\n"],
    ],
    ids=["chunked-space", "gzip-chunked", "two-te", "identity", "te-and-cl", "xchunked-cl"],
)
def test_every_transfer_encoding_but_plain_chunked_is_400(lines: list[bytes]) -> None:
    assert status("POST", b"Host: a\r\n", *lines) == 400


def test_plain_chunked_is_411_length_required() -> None:
    assert status("POST", b"Host: a\r\n", b"Transfer-Encoding: chunked\r\n") == 411
    assert status("POST", b"Host: a\r\n", b"Transfer-Encoding: CHUNKED\r\n") == 411


@pytest.mark.parametrize(
    "lines",
    [
        [b"Content-Length: 5\r\n", b"Content-Length: 6\r\n"],
        [b"Content-Length: 5\r\n", b"Content-Length: 5\r\n"],
        [b"Content-Length: 5, 5\r\n"],
        [b"Content-Length: -1\r\n"],
        [b"Content-Length: +5\r\n"],
        [b"Content-Length: 0x10\r\n"],
        ["Content-Length: ²\r\n".encode("latin-1", "replace")],
        ["Content-Length: \u0665\r\n".encode()],  # ARABIC-INDIC DIGIT FIVE in UTF-8
        [b"Content-Length: \r\n"],
    ],
    ids=["conflict", "repeat", "list", "negative", "plus", "hex", "superscript", "arabic", "empty"],
)
def test_conflicting_or_malformed_content_length_is_400(lines: list[bytes]) -> None:
    assert status("POST", b"Host: a\r\n", *lines) == 400


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "line", [b"Content-Length: 10\r\n", b"Transfer-Encoding: chunked\r\n"], ids=["cl", "te"]
)
def test_a_body_on_get_or_head_is_400(method: str, line: bytes) -> None:
    assert status(method, b"Host: a\r\n", line) == 400


@pytest.mark.parametrize(
    "lines",
    [
        [b"Host: a\n"],  # bare LF
        [b"Host: a\r\n", b"X: a\rb\r\n"],  # bare CR
        [b"Host: a\r\n", b"Content-Length: 5\r\n", b" 7\r\n"],  # obs-fold
        [b"Host: a\r\n", b"Content-Length : 5\r\n"],  # space before the colon
        [b"Host: a\r\n", b"Garbage\r\n"],  # no colon
        [b"Host: a\r\n", b"X: a\x00b\r\n"],  # NUL
        [b"Host: a\r\n", b": no name\r\n"],
    ],
    ids=["bare-lf", "bare-cr", "obs-fold", "space-colon", "no-colon", "nul", "no-name"],
)
def test_malformed_header_lines_are_400(lines: list[bytes]) -> None:
    assert status("POST", *lines) == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"])
def test_other_methods_are_405_with_allow(method: str) -> None:
    headers, raw = parse([b"Host: a\r\n"])
    with pytest.raises(FramingError) as caught:
        check_framing(method, headers, raw)
    assert caught.value.status == 405
    assert caught.value.headers == {"Allow": "GET, HEAD, POST"}


def test_content_length_values() -> None:
    assert content_length("0") == 0
    assert content_length(" 17 ") == 17
    assert content_length("0" * 30 + "5") == 5  # leading zeros are digits too
    assert content_length("9" * 5000) == HUGE_LENGTH  # never int() of 5000 digits
    assert content_length(str(10**17)) == 10**17
