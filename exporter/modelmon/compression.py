"""gzip bodies built from parts, some compressed in advance.

The computed statistics of ``/metrics`` change once per refresh, not per scrape, so the
refresher deflates them once (:func:`deflate_part`) and a scrape compresses only the
counters in front of them. :func:`gzip_join` splices the parts into one gzip member:
each part is a raw deflate stream ended with a full flush (byte-aligned, no final
block, nothing referring back into an earlier part), so the parts concatenate into one
valid deflate stream; the member ends with an empty final block and the CRC-32 and
length of the whole. Every gzip reader decodes it as one ordinary stream.

>>> import gzip
>>> static = deflate_part(b"b 2\\n" * 1000)
>>> gzip.decompress(gzip_join([b"a 1\\n", static, b"# EOF\\n"])) == (
...     b"a 1\\n" + b"b 2\\n" * 1000 + b"# EOF\\n"
... )
True
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

#: Magic, deflate, no flags, no modification time, no extra flags, unknown OS.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
LEVEL = 1


class DeflatedPart(NamedTuple):
    """Bytes, and their raw deflate stream ended with a full flush."""

    raw: bytes
    deflated: bytes


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def deflate_part(data: bytes) -> DeflatedPart:
    return DeflatedPart(data, _deflate(data))


def gzip_join(parts: Sequence[bytes | DeflatedPart]) -> bytes:
    """One gzip member holding the concatenation of ``parts``; a
    :class:`DeflatedPart` is spliced in as it is, plain bytes are compressed here."""
    chunks = [_HEADER]
    crc = size = 0
    for part in parts:
        raw = part.raw if isinstance(part, DeflatedPart) else part
        if not raw:
            continue
        chunks.append(part.deflated if isinstance(part, DeflatedPart) else _deflate(raw))
        crc = zlib.crc32(raw, crc)
        size += len(raw)
    chunks.append(zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS).flush())  # final
    chunks.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(chunks)
