"""gzip bodies spliced from parts compressed at different times (modelmon.compression)."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.compression import deflate_part, gzip_join

parts = st.lists(
    st.tuples(st.booleans(), st.binary(max_size=3000) | st.text(max_size=500).map(str.encode)),
    max_size=6,
)


@settings(max_examples=100, deadline=None)
@given(parts)
def test_the_joined_member_decodes_to_the_concatenation(chosen: list[tuple[bool, bytes]]) -> None:
    built = [deflate_part(data) if early else data for early, data in chosen]
    body = gzip_join(built)
    whole = b"".join(data for _, data in chosen)
    assert gzip.decompress(body) == whole
    # One member, as a streaming reader sees it (urllib3, Go's gzip.Reader).
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert reader.decompress(body) + reader.flush() == whole
    assert reader.eof
    assert reader.unused_data == b""


def test_a_part_deflated_in_advance_is_spliced_in_as_it_is() -> None:
    static = deflate_part(b"modelmon_drift_score 0.25\n" * 2000)
    body = gzip_join([b"# counters\n", static, b"# EOF\n"])
    assert static.deflated in body
    assert len(body) < len(static.raw) // 20  # really compressed
    assert gzip.decompress(body).endswith(b"0.25\n# EOF\n")
