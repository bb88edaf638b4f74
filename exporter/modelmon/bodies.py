"""Request bodies: size limits, gzip, JSON / JSON array / NDJSON parsing.

orjson parses when it is installed (the ``fast`` extra), the standard library otherwise.

Memory per request is bounded before anything is parsed: a parsed body costs Python
objects per JSON value, which can be 30 times the body's bytes (``[{},{},...]``), so the
values are counted first (:func:`count_values`, at C speed: the structural characters
``{``, ``[`` and ``,``, plus one per NDJSON line) and a body with more than
``limits.max_values`` is answered 413 unparsed; gzip is inflated in chunks and counted
as it goes, so a bomb stops early. NDJSON lines are parsed one by one and parsing stops
at ``max_records + 1`` records. docs/security.md has the memory arithmetic.
"""

from __future__ import annotations

import json
import math
import re
import threading
import zlib
from collections.abc import Callable
from typing import Any

from modelmon.ingest import InvalidLine

try:
    import orjson

    _fast: Any = orjson.loads
except ImportError:  # pragma: no cover - depends on the installed extras
    _fast = json.loads

#: What a body that does not parse raises (JSONDecodeError and UnicodeDecodeError are
#: ValueErrors; nesting beyond the parser's bound is a RecursionError).
_DecodeError = (ValueError, RecursionError)


def loads(data: bytes | bytearray) -> Any:
    """Parse JSON with orjson when installed, falling back to the standard library for
    what orjson refuses but Python's ``json.dumps`` writes: ``NaN``, ``Infinity`` and
    out-of-range numbers such as ``1e999`` (NaN then counts as missing, infinities as
    out of range; an integer of more than 4300 digits reads as +-inf too). The fallback
    runs only on a body orjson rejected.

    Text that is not Unicode — a lone surrogate escape such as ``"\\ud800"``, which the
    standard library would let through — is refused, so no string that cannot be
    written back out (to SQLite, to /metrics) ever enters.
    """
    if _fast is json.loads:
        value = _standard(data)
    else:
        try:
            return _fast(data)
        except _DecodeError:
            value = _standard(data)
    if _SURROGATE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate escape (not Unicode)") from None
    return value


_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]")

#: Python refuses to convert integer text longer than this by default (the conversion
#: is quadratic in the digits); such an integer is far beyond float range anyway.
MAX_INT_DIGITS = 4300


def _huge_int(text: str) -> int | float:
    """An integer of the JSON text; beyond ``MAX_INT_DIGITS`` digits it is far beyond
    float range, so it reads as +-inf (as ``1e999`` does) instead of failing the body.

    >>> _huge_int("12"), _huge_int("9" * 5000), _huge_int("-" + "9" * 5000)
    (12, inf, -inf)
    """
    if len(text) > MAX_INT_DIGITS:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


def _standard(data: bytes | bytearray) -> Any:
    return json.loads(data, parse_int=_huge_int)


JSON_TYPES = ("application/json", "text/json")
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
)


class BodyError(Exception):
    """A body that cannot be used: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def media_type(content_type: str | None) -> str:
    """The body kind ("json" or "ndjson") from a Content-Type header, or BodyError 415."""
    if not content_type:
        return "json"
    base = content_type.split(";", 1)[0].strip().lower()
    if base in JSON_TYPES:
        return "json"
    if base in NDJSON_TYPES:
        return "ndjson"
    raise BodyError(
        415,
        f"Content-Type: {base!r} is not supported; send application/json or application/x-ndjson",
    )


#: Bytes inflated at a time: each piece is counted (values) before the next is made.
INFLATE_CHUNK = 1 << 20


def decompress(
    body: bytes | bytearray,
    encoding: str | None,
    limit: int,
    check: Callable[[bytes], None] | None = None,
) -> bytes | bytearray:
    """The body after Content-Encoding, refusing to inflate past ``limit`` bytes.

    ``check`` sees each inflated piece (at most ``INFLATE_CHUNK`` bytes) as it is made
    and may raise :class:`BodyError` to stop early (see :class:`ValueCounter`).
    """
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        if check is not None:
            check(body)  # type: ignore[arg-type]  # bytes.count works on both
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(415, f"Content-Encoding: {enc!r} is not supported; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    out = bytearray()
    rest = bytes(body)
    # A gzip body may hold several members one after the other (gzip.decompress reads
    # them all): inflate each, keeping the size limit over the whole body.
    while rest:
        inflater = zlib.decompressobj(wbits)
        while True:
            try:
                piece = inflater.decompress(rest, min(INFLATE_CHUNK, limit + 1 - len(out)))
            except zlib.error as exc:
                raise BodyError(400, f"body: not valid {enc} data: {exc}") from None
            rest = inflater.unconsumed_tail
            if len(out) + len(piece) > limit:
                raise BodyError(413, f"body: decompresses to more than the limit of {limit} bytes")
            if check is not None:
                check(piece)
            out += piece
            if inflater.eof or not rest:
                break
        if not inflater.eof:
            raise BodyError(400, f"body: truncated {enc} data")
        rest = inflater.unused_data if enc != "deflate" else b""
    return out


class ValueCounter:
    """Counts the JSON values of a body piece by piece; over ``limit``, BodyError 413.

    The count is an upper bound, taken at C speed without parsing: every value of a
    JSON document but the first follows a ``[``, a ``{`` or a ``,`` (an object member,
    key and value, counts once), and each NDJSON line holds one document. Those
    characters inside strings count too, so the bound errs on the safe side.

    >>> counter = ValueCounter("json", limit=5)
    >>> counter(b'[{"a": 1}, '); counter.count
    4
    >>> counter(b'{"b": [1, 2]}]')
    Traceback (most recent call last):
    ...
    modelmon.bodies.BodyError: body: more than 5 JSON values ...
    """

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self.count = 1  # the first (or only) document

    def __call__(self, piece: bytes) -> None:
        self.count += piece.count(b",") + piece.count(b"{") + piece.count(b"[")
        if self.kind == "ndjson":
            self.count += piece.count(b"\n")
        if self.count > self.limit:
            raise BodyError(
                413,
                f"body: more than {self.limit} JSON values (limits.max_values; counted as "
                "the characters '{', '[' and ',' plus one per NDJSON line)",
            )


def parse_records(body: bytes | bytearray, kind: str, max_records: int | None = None) -> list[Any]:
    """Records of a body: a JSON object or array of objects, or NDJSON, one per line.

    An NDJSON line that does not parse becomes an :class:`InvalidLine`, which ingest
    rejects with reason ``invalid_json`` while the other lines are used. More than
    ``max_records`` records is BodyError 413; NDJSON stops parsing at the first record
    over the limit.
    """
    if kind == "ndjson":
        return _ndjson_records(body, max_records)
    try:
        value = loads(body)
    except _DecodeError as exc:
        raise BodyError(400, f"body: not valid JSON: {_short(exc)}") from None
    records = value if isinstance(value, list) else [value]
    if max_records is not None and len(records) > max_records:
        raise _too_many(len(records), max_records)
    return records


#: A non-blank NDJSON line from its first non-blank byte: the regex engine skips blank
#: lines in C, so a body of empty lines costs no Python loop.
_LINE = re.compile(rb"[^\s][^\n]*")


def _ndjson_records(body: bytes | bytearray, max_records: int | None) -> list[Any]:
    records: list[Any] = []
    number, scanned = 1, 0
    for match in _LINE.finditer(body):
        if max_records is not None and len(records) >= max_records:
            raise _too_many(f"more than {max_records}", max_records)
        start = match.start()
        number += body.count(b"\n", scanned, start)
        scanned = start
        try:
            records.append(loads(match.group()))
        except _DecodeError as exc:
            records.append(InvalidLine(f"line {number}: not valid JSON: {_short(exc)}"))
    return records


def _too_many(count: int | str, limit: int) -> BodyError:
    return BodyError(
        413, f"body: {count} records is over the limit of {limit} per request (limits.max_records)"
    )


def _short(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
    return text[:200]


class ByteBudget:
    """Bytes of request bodies being read at once, at most ``capacity``.

    >>> budget = ByteBudget(10)
    >>> budget.reserve(8, timeout=0), budget.reserve(4, timeout=0)
    (True, False)
    >>> budget.release(8); budget.reserve(4, timeout=0)
    True
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._changed = threading.Condition()

    def reserve(self, size: int, timeout: float) -> bool:
        with self._changed:
            if not self._changed.wait_for(lambda: self.used + size <= self.capacity, timeout):
                return False
            self.used += size
            return True

    def release(self, size: int) -> None:
        with self._changed:
            self.used -= size
            self._changed.notify_all()
