"""Request bodies: size limits, gzip, JSON / JSON array / NDJSON parsing.

orjson parses when it is installed (the ``fast`` extra), the standard library otherwise.
"""

from __future__ import annotations

import json
import re
import threading
import zlib
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


def loads(data: bytes) -> Any:
    """Parse JSON with orjson when installed, falling back to the standard library for
    what orjson refuses but Python's ``json.dumps`` writes: ``NaN``, ``Infinity`` and
    out-of-range numbers such as ``1e999`` (NaN then counts as missing, infinities as
    out of range). The fallback runs only on a body orjson rejected.

    Text that is not Unicode — a lone surrogate escape such as ``"\\ud800"``, which the
    standard library would let through — is refused, so no string that cannot be
    written back out (to SQLite, to /metrics) ever enters.
    """
    try:
        value = _fast(data)
        if _fast is not json.loads:
            return value
    except _DecodeError:
        if _fast is json.loads:
            raise
        value = json.loads(data)
    if _SURROGATE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate escape (not Unicode)") from None
    return value


_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]")


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


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after Content-Encoding, refusing to inflate past ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(415, f"Content-Encoding: {enc!r} is not supported; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    rest = body
    # A gzip body may hold several members one after the other (gzip.decompress reads
    # them all): inflate each, keeping the size limit over the whole body.
    while rest:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise BodyError(400, f"body: not valid {enc} data: {exc}") from None
        size += len(out)
        if size > limit or inflater.unconsumed_tail:
            raise BodyError(413, f"body: decompresses to more than the limit of {limit} bytes")
        if not inflater.eof:
            raise BodyError(400, f"body: truncated {enc} data")
        parts.append(out)
        rest = inflater.unused_data if enc != "deflate" else b""
    return b"".join(parts)


def parse_records(body: bytes, kind: str) -> list[Any]:
    """Records of a body: a JSON object or array of objects, or NDJSON, one per line.

    An NDJSON line that does not parse becomes an :class:`InvalidLine`, which ingest
    rejects with reason ``invalid_json`` while the other lines are used.
    """
    if kind == "ndjson":
        records: list[Any] = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append(loads(line))
            except _DecodeError as exc:
                records.append(InvalidLine(f"line {number}: not valid JSON: {_short(exc)}"))
        return records
    try:
        value = loads(body)
    except _DecodeError as exc:
        raise BodyError(400, f"body: not valid JSON: {_short(exc)}") from None
    if isinstance(value, list):
        return value
    return [value]


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
