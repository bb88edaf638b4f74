"""Bodies are counted before they are parsed (modelmon.bodies): memory stays bounded."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.bodies import INFLATE_CHUNK, BodyError, ValueCounter, decompress, parse_records


def python_values(value: Any) -> int:
    """The oracle: values and object members of a parsed document, walked."""
    if isinstance(value, dict):
        return 1 + sum(python_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(python_values(v) for v in value)
    return 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_the_count_is_an_upper_bound_of_the_values(value: Any) -> None:
    body = json.dumps(value).encode()
    counter = ValueCounter("json", limit=10**9)
    counter(body)
    assert counter.count >= python_values(value)


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=5))
def test_ndjson_counts_a_value_per_line(values: list[Any]) -> None:
    body = "\n".join(json.dumps(v) for v in values).encode()
    counter = ValueCounter("ndjson", limit=10**9)
    counter(body)
    assert counter.count >= sum(python_values(v) for v in values)


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_gzip_bomb_stops_inflating_at_the_value_limit(kind: str) -> None:
    """63 MiB of empty objects in about 64 KB: the count stops it after a few MiB."""
    records = 21_000_000
    text = b"{}\n" * records if kind == "ndjson" else b"[" + b"{}," * (records - 1) + b"{}]"
    bomb = gzip.compress(text, 9)
    assert len(bomb) < 200_000
    counter = ValueCounter(kind, limit=2_000_000)
    tracemalloc.start()
    with pytest.raises(BodyError) as caught:
        decompress(bomb, "gzip", 64 * 2**20, counter)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert caught.value.status == 413
    assert "JSON values" in caught.value.message
    # 2 million values of 3 bytes each were inflated, and the bomb with them: ~8 MiB.
    assert peak < 6 * 2_000_000 + 2 * INFLATE_CHUNK + 2 * len(bomb), peak


def test_ndjson_parsing_stops_past_max_records() -> None:
    body = b'{"features": {}}\n' * 1000
    with pytest.raises(BodyError) as caught:
        parse_records(body, "ndjson", max_records=10)
    assert caught.value.status == 413
    assert len(parse_records(body, "ndjson", max_records=1000)) == 1000


def test_blank_ndjson_lines_are_skipped_and_line_numbers_kept() -> None:
    body = b"\n\n   \n" + b'{"a": 1}\n' + b"\r\n\n" + b"{oops\n"
    records = parse_records(body, "ndjson", max_records=2)
    assert records[0] == {"a": 1}
    assert records[1].message.startswith("line 7: not valid JSON")  # as split() counts


def test_json_array_over_max_records_is_413() -> None:
    with pytest.raises(BodyError) as caught:
        parse_records(b"[1, 2, 3]", "json", max_records=2)
    assert caught.value.status == 413


def test_an_integer_of_more_than_4300_digits_reads_as_infinity() -> None:
    [record] = parse_records(('{"features": {"age": -' + "9" * 5000 + "}}").encode(), "json")
    assert record["features"]["age"] == float("-inf")
