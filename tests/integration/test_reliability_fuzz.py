"""Hypothesis fuzzing of the ingest API and of the JSONL source, against a real exporter.

HTTP: random JSON values, record-shaped objects with random types in every field,
random bytes, gzip bodies (whole and truncated) and NDJSON with bad lines go to a
running exporter over real sockets. Properties:

- no answer is a 5xx and no connection breaks; the server keeps serving;
- a body that is valid JSON within the limits gets a 200, and then
  ``accepted + rejected`` equals the number of records in it (counted by the standard
  library's ``json``, not by modelmon), every rejection listed with a distinct index;
- over all cases, the ``accepted`` answers add up to the growth of
  ``modelmon_events_total`` (predictions) or of the label outcomes (labels), and the
  ``rejected`` answers to the growth of ``modelmon_rejected_records_total``.

JSONL: random lines (records, labels, other JSON, garbage, blank) appended to a file
that a configured ``sources`` entry tails; after each poll every non-blank line is
accounted for exactly once: as an event, a rejection, a joined label, an unmatched label
or a label waiting for its prediction.

The cases are derandomized (the same every run, so CI is reproducible); ``MAX_EXAMPLES``
is what docs/reliability.md reports.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from conftest import default_config, parse_exposition
from modelmon.app import Exporter
from modelmon.config import config_from_dict

pytestmark = pytest.mark.integration

MODEL = "credit-risk"
MAX_RECORDS = 200
#: Cases per fuzz test, as reported in docs/reliability.md.
MAX_EXAMPLES = {
    "json_values": 100,
    "records": 300,
    "labels": 150,
    "random_bytes": 200,
    "gzip": 100,
    "ndjson": 150,
    "jsonl_source": 100,
}
ALLOWED = {200, 400, 411, 413, 415}


def fuzz_settings(name: str) -> settings:
    """Derandomized, and without shrinking: the exporter keeps state between cases, so
    a shrunk case replayed on it would prove nothing; the first failing case is shown."""
    return settings(
        max_examples=MAX_EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- strategies ----------------------------------------------------------------------

# Integers a strict JSON parser reads exactly (orjson: 64 bits), floats finite: every
# generated value serializes to standard JSON.
INTEGERS = st.integers(-(2**63), 2**64 - 1)
SCALARS = (
    st.none()
    | st.booleans()
    | INTEGERS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
INTERESTING = st.sampled_from(
    [
        "2025-11-25T12:00:00Z", "2025-11-25 12:00:00+14:00", "0001-01-01T00:00:00-12:00",
        "9999-12-31T23:59:59+14:00", "yesterday", "", " ", "1", "1.5", "-0", "nan", "inf",
        "-inf", "1e999", "DE", "FR", "__other__", "\x00", "\u2028", "é" * 300,
        True, False, 0, 1, -1, 0.5, 1.0, 1e308, -1e308, 5e-324, 2**63, -(2**63),
        2**64, 10**400, -(10**400),  # valid JSON beyond 64 bits and beyond float range
        [], {}, [1], {"a": 1},
    ]
)  # fmt: skip
# Lone surrogates: json.dumps writes them as \\udXXX escapes, which the JSON grammar
# allows but no UTF-8 text can hold; a parser may refuse them or read them.
SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
WILD = INTERESTING | JSON_VALUES | SURROGATES
COLUMNS = st.sampled_from(["age", "income", "country", "extra"]) | st.text(max_size=10)
FEATURES = st.dictionaries(COLUMNS, WILD, max_size=6) | WILD
IDS = st.sampled_from([f"id-{i}" for i in range(30)]) | SURROGATES | WILD
RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "id": IDS,
        "timestamp": WILD,
        "version": st.sampled_from(["v1", "v2"]) | WILD,
        "features": FEATURES,
        "prediction": st.sampled_from([0, 1, "0", "1", True]) | WILD,
        "score": st.floats(0, 1) | WILD,
        "scores": WILD,
        "label": st.sampled_from([0, 1, None]) | WILD,
        "latency_seconds": st.floats(0, 10) | WILD,
    },
)
LABELS = st.fixed_dictionaries(
    {},
    optional={"id": IDS, "label": st.sampled_from([0, 1, "1"]) | WILD, "timestamp": WILD},
)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()


def has_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def expected(value: Any) -> int | None:
    """The records a parsed body holds, or None where a strict parser may refuse it."""
    return None if has_surrogate(value) else records_in(value)


def records_in(value: Any) -> int:
    """How many records a parsed JSON body holds: an array's items, else one."""
    return len(value) if isinstance(value, list) else 1


def strict_loads(data: bytes) -> Any:
    """The standard library's reading of strict JSON (no NaN/Infinity, UTF-8 only)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not standard JSON: {constant}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def ndjson_lines(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.strip()]


# --- the exporter --------------------------------------------------------------------


@dataclass
class Totals:
    """What the answers said, summed over all cases of one test."""

    accepted: int = 0
    rejected: int = 0


@dataclass
class Target:
    url: str
    app: Exporter
    session: requests.Session

    def post(self, body: bytes, kind: str = "predictions", **headers: str) -> requests.Response:
        headers.setdefault("Content-Type", "application/json")
        return self.session.post(
            f"{self.url}/v1/models/{MODEL}/{kind}", data=body, headers=headers, timeout=30
        )

    def metrics_answer(self) -> None:
        """/metrics still answers: a record cannot have broken the exposition."""
        assert self.session.get(self.url + "/metrics", timeout=30).status_code == 200

    def counts(self) -> dict[str, float]:
        samples = parse_exposition(self.session.get(self.url + "/metrics", timeout=30).text)
        return label_outcomes(samples, self.app)


def label_outcomes(samples: Any, app: Exporter) -> dict[str, float]:
    """Every place a record can end up: counted, rejected or (labels) joined, unmatched
    or waiting as an orphan in the join store."""

    def total(name: str) -> float:
        return float(sum(samples.series(name).values()))

    return {
        "events": total("modelmon_events_total"),
        "rejected": total("modelmon_rejected_records_total"),
        "labels": total("modelmon_labels_total")
        + total("modelmon_unmatched_labels_total")
        + app.store.orphans(MODEL),
    }


@pytest.fixture
def target(module_exporters: Any) -> Iterator[Target]:
    """A fresh exporter per test (from the module's pool, stopped at the module's end),
    so a test that breaks one leaves the others their own."""
    running = module_exporters.start(limits={"max_records": MAX_RECORDS})
    with requests.Session() as session:
        yield Target(running.url, running.app, session)


def check_answer(
    response: requests.Response, expected_records: int | None, body: bytes | None = None
) -> Totals:
    """The properties every answer has; ``expected_records`` when the body must parse,
    else (``body`` given) a 200 must count the records the standard library reads."""
    assert response.status_code < 500, response.text
    assert response.status_code in ALLOWED, (response.status_code, response.text)
    if expected_records is not None:
        assert response.status_code == 200, response.text
    if response.status_code != 200:
        assert "error" in response.json()
        return Totals()
    result = response.json()
    if expected_records is None and body is not None:
        expected_records = records_in(strict_loads(body))
    if expected_records is not None:
        assert result["accepted"] + result["rejected"] == expected_records, result
    indices = [error["index"] for error in result["errors"]]
    assert len(indices) == len(set(indices)) == min(result["rejected"], 100)
    assert all(0 <= i < result["accepted"] + result["rejected"] for i in indices)
    assert all(error["reason"] and error["error"] for error in result["errors"])
    return Totals(result["accepted"], result["rejected"])


def accounting(target: Target, kind: str) -> Callable[[Totals], None]:
    """Check, after a test's cases, that the counters grew by what the answers said."""
    before = target.counts()

    def check(totals: Totals) -> None:
        after = target.counts()
        grown = {key: after[key] - before[key] for key in after}
        outcome = "events" if kind == "predictions" else "labels"
        assert grown[outcome] == totals.accepted, (grown, totals)
        assert grown["rejected"] == totals.rejected, (grown, totals)
        assert requests.get(target.url + "/healthz", timeout=5).status_code == 200

    return check  # counts() parsed /metrics: random versions and categories became label
    # values, and the exposition must still be valid


# --- HTTP fuzzing --------------------------------------------------------------------


def test_fuzz_random_json_values(target: Target) -> None:
    totals = Totals()
    check = accounting(target, "predictions")

    @fuzz_settings("json_values")
    @given(value=JSON_VALUES | st.lists(JSON_VALUES, max_size=MAX_RECORDS))
    def case(value: Any) -> None:
        body = dumps(value)
        answer = check_answer(target.post(body), expected(value), body)
        target.metrics_answer()
        totals.accepted += answer.accepted
        totals.rejected += answer.rejected

    case()
    check(totals)


#: Valid JSON beyond float range in every numeric field (an out-of-range value, never a
#: 500); an explicit case, as the derandomized draws need not reach it.
HUGE_NUMBERS = {
    "id": "huge-1",
    "timestamp": 10**400,
    "features": {"age": 10**400, "income": -(10**400), "country": 10**400},
    "prediction": 10**400,
    "score": 10**400,
    "label": 10**400,
    "latency_seconds": 10**400,
}


def test_fuzz_record_shaped_objects(target: Target) -> None:
    totals = Totals()
    check = accounting(target, "predictions")

    @fuzz_settings("records")
    @given(value=RECORDS | st.lists(RECORDS | WILD, max_size=30))
    @example(value=[HUGE_NUMBERS, {**HUGE_NUMBERS, "id": "huge-2", "prediction": -(10**400)}])
    def case(value: Any) -> None:
        body = dumps(value)
        answer = check_answer(target.post(body), expected(value), body)
        target.metrics_answer()
        totals.accepted += answer.accepted
        totals.rejected += answer.rejected

    case()
    check(totals)


def test_fuzz_label_records(target: Target) -> None:
    totals = Totals()
    check = accounting(target, "labels")

    @fuzz_settings("labels")
    @given(value=LABELS | st.lists(LABELS | WILD, max_size=30))
    @example(value=[{"id": "twice", "label": 1}, {"id": "twice", "label": 0}])
    def case(value: Any) -> None:
        body = dumps(value)
        answer = check_answer(target.post(body, "labels"), expected(value), body)
        target.metrics_answer()
        totals.accepted += answer.accepted
        totals.rejected += answer.rejected

    case()
    check(totals)


JSONISH = st.text(alphabet='[]{}",:0123456789.eE-+ \n\tnultrufas\\', max_size=60)


def test_fuzz_random_bytes(target: Target) -> None:
    totals = Totals()
    check = accounting(target, "predictions")

    @fuzz_settings("random_bytes")
    @given(
        body=st.binary(max_size=200) | JSONISH.map(str.encode),
        content_type=st.sampled_from(["application/json", "application/x-ndjson"]),
    )
    def case(body: bytes, content_type: str) -> None:
        response = target.post(body, **{"Content-Type": content_type})
        answer = check_answer(response, None)
        totals.accepted += answer.accepted
        totals.rejected += answer.rejected
        if response.status_code == 200 and content_type == "application/json":
            assert answer.accepted + answer.rejected == records_in(strict_loads(body))
        if response.status_code == 200 and content_type == "application/x-ndjson":
            assert answer.accepted + answer.rejected == len(ndjson_lines(body))

    case()
    check(totals)


def test_fuzz_gzip_whole_and_truncated(target: Target) -> None:
    """A whole gzip body is read like the plain one; a truncated one is a 400."""
    totals = Totals()
    check = accounting(target, "predictions")

    @fuzz_settings("gzip")
    @given(
        value=st.lists(RECORDS, min_size=1, max_size=20),
        drop=st.none() | st.integers(1, 12) | st.integers(1, 10_000),
    )
    @example(value=[{"features": {"age": 1}}], drop=8)  # the trailer (CRC32, size) only
    def case(value: Any, drop: int | None) -> None:
        plain = dumps(value)
        packed = gzip.compress(plain)
        if drop is not None:  # bytes cut off the end: the trailer, or into the data
            packed = packed[: max(0, len(packed) - drop)]
        response = target.post(packed, **{"Content-Encoding": "gzip"})
        if drop is None:
            answer = check_answer(response, expected(value), plain)
        else:
            answer = check_answer(response, None)
        if drop is not None:
            assert response.status_code == 400, (drop, len(packed), response.text)
        totals.accepted += answer.accepted
        totals.rejected += answer.rejected

    case()
    check(totals)


GARBAGE_LINES = (st.text(max_size=40) | JSONISH).filter(lambda t: "\n" not in t)


def is_invalid(line: bytes) -> bool:
    try:
        strict_loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError too
        return True
    return False


def test_fuzz_ndjson_with_bad_lines(target: Target) -> None:
    totals = Totals()
    check = accounting(target, "predictions")
    lines = st.lists(
        RECORDS.map(dumps)
        | GARBAGE_LINES.map(str.encode)
        | st.binary(max_size=30).filter(lambda b: b"\n" not in b)
        | st.sampled_from([b"", b"   ", b"\r"]),
        max_size=40,
    )

    @fuzz_settings("ndjson")
    @given(lines=lines, separator=st.sampled_from([b"\n", b"\r\n"]))
    def case(lines: list[bytes], separator: bytes) -> None:
        body = separator.join(lines)
        response = target.post(body, **{"Content-Type": "application/x-ndjson"})
        expected = ndjson_lines(body)
        answer = check_answer(response, len(expected))
        invalid = sum(is_invalid(line) for line in expected)
        either = sum(has_surrogate(strict_loads(line)) for line in expected if not is_invalid(line))
        reasons = [error["reason"] for error in response.json()["errors"]]
        assert invalid <= reasons.count("invalid_json") <= invalid + either, (reasons, expected)
        totals.accepted += answer.accepted
        totals.rejected += answer.rejected

    case()
    check(totals)


# --- JSONL source fuzzing ------------------------------------------------------------


def classify(line: bytes) -> str | None:
    """The independent reading of one tailed line: None for blank lines."""
    if not line.strip():
        return None
    try:
        value = strict_loads(line)
    except ValueError:
        return "invalid_json"
    if not isinstance(value, dict):
        return "not_a_record"
    if "features" in value:
        return "prediction"
    if "id" in value and "label" in value:
        return "label"
    return "not_a_record"


@pytest.fixture
def tailed(tmp_path: Path, make_profile: Any) -> Iterator[tuple[Exporter, Path]]:
    """An exporter built from a config with a JSONL source, polled by the test itself."""
    from conftest import reference_rows

    built = make_profile(reference_rows(), "credit-risk", prediction="prediction", score="score")
    raw = default_config(built.path)
    logs = tmp_path / "logs"
    logs.mkdir()
    raw["sources"] = [{"type": "jsonl", "path": str(logs / "*.jsonl"), "model": MODEL}]
    app = Exporter(config_from_dict(raw, tmp_path))
    try:
        yield app, logs / "predictions.jsonl"
    finally:
        app.stop()


def test_fuzz_jsonl_source_accounts_for_every_line(tailed: tuple[Exporter, Path]) -> None:
    app, path = tailed
    [source] = app.sources
    path.touch()

    def counts() -> dict[str, float]:
        samples = parse_exposition(generate_latest(app.registry).decode())
        return label_outcomes(samples, app)

    label_record = st.fixed_dictionaries(
        {"id": IDS, "label": st.sampled_from([0, 1, "1"]) | WILD},
        optional={"timestamp": WILD},
    )
    lines = st.lists(
        RECORDS.filter(lambda v: not has_surrogate(v)).map(dumps)
        | label_record.filter(lambda v: not has_surrogate(v)).map(dumps)
        | JSON_VALUES.map(dumps)
        | GARBAGE_LINES.map(str.encode)
        | st.sampled_from([b"", b"  "]),
        max_size=30,
    )

    @fuzz_settings("jsonl_source")
    @given(lines=lines)
    def case(lines: list[bytes]) -> None:
        before = counts()
        rejected_before = parse_exposition(generate_latest(app.registry).decode())
        with path.open("ab") as handle:
            handle.write(b"".join(line + b"\n" for line in lines))
        source.poll_once()
        after = counts()
        kinds = [k for k in map(classify, lines) if k is not None]
        grown = sum(after[key] - before[key] for key in after)
        assert grown == len(kinds), (after, before, kinds)
        samples = parse_exposition(generate_latest(app.registry).decode())
        for reason in ("invalid_json", "not_a_record"):
            labels = {"model": MODEL, "reason": reason}
            added = samples.value("modelmon_rejected_records_total", **labels)
            added -= rejected_before.value("modelmon_rejected_records_total", **labels)
            assert added == kinds.count(reason), (reason, kinds)
        assert after["events"] - before["events"] <= kinds.count("prediction")

    case()
