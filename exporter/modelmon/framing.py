"""HTTP/1.1 message framing (RFC 9112): where a request ends, decided strictly.

A proxy in front of modelmon and modelmon itself must agree on where each request ends.
Wherever two readers of the same bytes could disagree (request smuggling), the request
is refused and the connection closed, as RFC 9112 section 6.3 asks:

- ``Transfer-Encoding`` of any kind: modelmon implements none. ``chunked`` alone is
  ``411`` (send ``Content-Length``); any other value, a list, a repeated header, or
  ``Transfer-Encoding`` beside ``Content-Length`` is ``400``;
- ``Content-Length`` that is not ASCII digits, is repeated (even with equal values) or is
  a list is ``400``;
- a body on ``GET`` or ``HEAD`` (``Content-Length`` above 0, or any
  ``Transfer-Encoding``) is ``400``: it is never read, so it would be taken for the
  next request;
- a header line that is not ``name: value`` ended by CRLF (a bare LF or CR, a folded
  continuation line, a space before the colon, a NUL) is ``400``;
- a method other than GET, HEAD and POST is ``405`` with ``Allow``.

>>> from http.client import HTTPMessage
>>> headers = HTTPMessage()
>>> headers["Content-Length"] = "12"
>>> check_framing("POST", headers, [b"Content-Length: 12\\r\\n", b"\\r\\n"])
>>> headers["Content-Length"] = "12"
>>> check_framing("POST", headers, [])
Traceback (most recent call last):
...
modelmon.framing.FramingError: Content-Length: given 2 times; send it once
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import Message

ALLOWED_METHODS = ("GET", "HEAD", "POST")
BODYLESS_METHODS = ("GET", "HEAD")
#: A length beyond any limit; longer digit strings are not converted (int() of 5000
#: digits is refused by Python and would be slow).
HUGE_LENGTH = 10**18
_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class FramingError(Exception):
    """A request whose framing modelmon refuses; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def check_framing(method: str, headers: Message, raw_lines: Sequence[bytes]) -> None:
    """Raise :class:`FramingError` unless the request's framing is unambiguous.

    ``raw_lines`` are the header lines as received (with their line ends), checked for
    CRLF; ``headers`` is what the standard library parsed from them.
    """
    _check_lines(headers, raw_lines)
    if method not in ALLOWED_METHODS:
        raise FramingError(
            405,
            f"method: {method[:20]!r} is not allowed; use GET, HEAD or POST",
            {"Allow": ", ".join(ALLOWED_METHODS)},
        )
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if encodings:
        _check_transfer_encoding(method, encodings, lengths)
    if len(lengths) > 1:
        raise FramingError(400, f"Content-Length: given {len(lengths)} times; send it once")
    if lengths:
        length = content_length(lengths[0])
        if method in BODYLESS_METHODS and length > 0:
            raise FramingError(400, f"body: a {method} request has no body")


def content_length(value: str) -> int:
    """The length a ``Content-Length`` value declares; FramingError 400 if malformed.

    >>> content_length("42"), content_length("007"), content_length("9" * 5000) == HUGE_LENGTH
    (42, 7, True)
    >>> content_length("²")
    Traceback (most recent call last):
    ...
    modelmon.framing.FramingError: Content-Length: '²' is not a length (ASCII digits)
    """
    text = value.strip(" \t")
    if not _DIGITS.fullmatch(text):
        raise FramingError(400, f"Content-Length: {text[:40]!r} is not a length (ASCII digits)")
    digits = text.lstrip("0") or "0"
    return HUGE_LENGTH if len(digits) > 18 else int(digits)


def _check_lines(headers: Message, raw_lines: Sequence[bytes]) -> None:
    for line in raw_lines:
        body = line[:-2] if line.endswith(b"\r\n") else None
        if body is None or b"\r" in body or b"\n" in body:
            raise FramingError(400, "header: a line not ended by CRLF (bare LF or CR)")
        if body[:1] in (b" ", b"\t"):
            raise FramingError(400, "header: a folded continuation line (obs-fold)")
    if headers.defects or headers.get_payload():
        raise FramingError(400, "header: a line that is not 'name: value'")
    for name, value in headers.items():
        if _CONTROL.search(value):
            raise FramingError(400, f"header: {name[:40]!r} holds a control character")


def _check_transfer_encoding(method: str, encodings: list[str], lengths: list[str]) -> None:
    if method in BODYLESS_METHODS:
        raise FramingError(400, f"body: a {method} request has no body (Transfer-Encoding)")
    if len(encodings) == 1 and encodings[0].lower() == "chunked" and not lengths:
        raise FramingError(411, "Transfer-Encoding: chunked is not supported; send Content-Length")
    shown = ", ".join(encodings)[:60]
    raise FramingError(
        400,
        f"Transfer-Encoding: {shown!r} is not supported"
        + ("; and it may not come with Content-Length" if lengths else "")
        + "; send the body with Content-Length only",
    )
