"""JsonlSource against real files in tmp_path and an in-memory sink.

Each test writes lines whose ids it knows, so the expected records come from what the
test wrote, never from the source under test.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.labels import StoreUnavailableError
from modelmon.sources import JsonlSource
from modelmon.sources.jsonl import checkpoint_name


@dataclass
class Outcome:
    accepted: int
    rejected: int
    errors: list[dict[str, object]] = field(default_factory=list)


class MemorySink:
    """Keeps every record it is given, and the size of every call, in order."""

    def __init__(self, fail_calls: int = 0, reject_index: int | None = None) -> None:
        self.predictions: list[dict[str, object]] = []
        self.labels: list[dict[str, object]] = []
        self.rejected: Counter[str] = Counter()
        self.calls: list[tuple[str, int]] = []
        self._fail_calls = fail_calls
        self._reject_index = reject_index

    def ingest_predictions(self, model: str, records: Sequence[object]) -> Outcome:
        return self._ingest("predictions", model, records, self.predictions)

    def ingest_labels(self, model: str, records: Sequence[object]) -> Outcome:
        return self._ingest("labels", model, records, self.labels)

    def count_rejected(self, model: str, reason: str, n: int = 1) -> None:
        assert model == "m"
        self.rejected[reason] += n

    def _ingest(self, kind: str, model: str, records: Sequence[object], into: list) -> Outcome:
        assert model == "m"
        if self._fail_calls:
            self._fail_calls -= 1
            raise RuntimeError("sink unavailable")
        self.calls.append((kind, len(records)))
        into.extend(records)
        if self._reject_index is not None and self._reject_index < len(records):
            return Outcome(len(records) - 1, 1, [{"index": self._reject_index, "error": "bad"}])
        return Outcome(len(records), 0)

    def prediction_ids(self) -> list[object]:
        return [record["features"]["i"] for record in self.predictions]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def prediction(i: int) -> str:
    return json.dumps({"id": f"r{i}", "features": {"i": i}, "prediction": i % 2}) + "\n"


def append(path: Path, lines: Iterable[str]) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(lines))


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_source(tmp_path: Path, sink: object, clock: FakeClock, **options: object) -> JsonlSource:
    options.setdefault("state_dir", tmp_path / "state")
    return JsonlSource(str(tmp_path / "log" / "p*.jsonl"), "m", sink, clock=clock, **options)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    (tmp_path / "log").mkdir()
    return tmp_path / "log"


def saved_positions(tmp_path: Path) -> dict[str, dict[str, object]]:
    name = checkpoint_name(str(tmp_path / "log" / "p*.jsonl"), "m")
    return json.loads((tmp_path / "state" / name).read_text())["files"]


def test_reads_whole_lines_in_file_order(tmp_path, log_dir, sink, clock):
    append(log_dir / "p.jsonl", [prediction(i) for i in range(5)])
    source = make_source(tmp_path, sink, clock)
    assert source.poll_once() == 5
    assert source.poll_once() == 0
    source.stop()
    assert sink.prediction_ids() == [0, 1, 2, 3, 4]
    assert sink.predictions[0] == {"id": "r0", "features": {"i": 0}, "prediction": 0}


def test_partial_last_line_waits_for_its_end(tmp_path, log_dir, sink, clock):
    path = log_dir / "p.jsonl"
    whole, partial = prediction(0), prediction(1)
    append(path, [whole, partial[:10]])
    source = make_source(tmp_path, sink, clock)
    assert source.poll_once() == 1
    # only the whole line is consumed, in memory and in the checkpoint
    assert [p["offset"] for p in saved_positions(tmp_path).values()] == [len(whole)]
    append(path, [partial[10:]])
    assert source.poll_once() == 1
    source.stop()
    assert sink.prediction_ids() == [0, 1]


def test_rename_rotation_finishes_the_renamed_file_first(tmp_path, log_dir, sink, clock):
    path = log_dir / "p.jsonl"
    source = make_source(tmp_path, sink, clock, rotated_grace=5.0)
    with path.open("a", encoding="utf-8") as writer:
        writer.write(prediction(0) + prediction(1))
        writer.flush()
        source.poll_once()
        writer.write(prediction(2))
        os.rename(path, log_dir / "p.jsonl.1")  # no longer matches p*.jsonl
        writer.write(prediction(3))  # the writer still holds the renamed file
    append(path, [prediction(4), prediction(5)])
    assert source.poll_once() == 4
    assert sink.prediction_ids() == [0, 1, 2, 3, 4, 5]
    assert len(saved_positions(tmp_path)) == 2  # the renamed file is still followed
    append(log_dir / "p.jsonl.1", [prediction(6)])  # a late write to the renamed file
    clock.now += 4.0
    assert source.poll_once() == 1
    clock.now += 5.0
    assert source.poll_once() == 0
    assert len(saved_positions(tmp_path)) == 1  # drained and idle: closed and forgotten
    source.stop()
    assert sink.prediction_ids() == [0, 1, 2, 3, 4, 5, 6]
    assert sink.rejected == Counter()


def test_rotated_name_still_matching_is_not_read_twice(tmp_path, log_dir, sink, clock):
    append(log_dir / "p.jsonl", [prediction(0), prediction(1)])
    source = make_source(tmp_path, sink, clock)
    source.poll_once()
    os.rename(log_dir / "p.jsonl", log_dir / "p-1.jsonl")
    append(log_dir / "p-1.jsonl", [prediction(2)])
    append(log_dir / "p.jsonl", [prediction(3)])
    source.poll_once()
    clock.now += 60
    source.poll_once()
    source.stop()
    assert sink.prediction_ids() == [0, 1, 2, 3]


def test_copy_truncate_reads_the_truncated_file_from_the_start(tmp_path, log_dir, sink, clock):
    path = log_dir / "p.jsonl"
    append(path, [prediction(i) for i in range(5)])
    source = make_source(tmp_path, sink, clock)
    source.poll_once()
    shutil.copyfile(path, log_dir / "p.jsonl.1")
    with path.open("r+") as file:
        file.truncate(0)
    append(path, [prediction(5), prediction(6)])
    assert source.poll_once() == 2
    source.stop()
    assert sink.prediction_ids() == [0, 1, 2, 3, 4, 5, 6]


def test_truncation_refilled_past_the_offset_is_seen_by_the_first_bytes(
    tmp_path, log_dir, sink, clock
):
    path = log_dir / "p.jsonl"
    append(path, [prediction(0), prediction(1)])
    source = make_source(tmp_path, sink, clock)
    source.poll_once()
    with path.open("r+") as file:
        file.truncate(0)
    append(path, [prediction(i) for i in range(100, 105)])  # longer than before
    assert source.poll_once() == 5
    source.stop()
    assert sink.prediction_ids() == [0, 1, 100, 101, 102, 103, 104]


def test_files_created_later_are_followed(tmp_path, log_dir, sink, clock):
    source = make_source(tmp_path, sink, clock)
    assert source.poll_once() == 0
    append(log_dir / "p-a.jsonl", [prediction(0)])
    append(log_dir / "other.log", [prediction(99)])  # does not match
    assert source.poll_once() == 1
    append(log_dir / "p-b.jsonl", [prediction(1)])
    append(log_dir / "p-a.jsonl", [prediction(2)])
    assert source.poll_once() == 2
    source.stop()
    assert sorted(sink.prediction_ids()) == [0, 1, 2]


def test_restart_resumes_exactly_at_the_checkpoint(tmp_path, log_dir, clock):
    path = log_dir / "p.jsonl"
    append(path, [prediction(i) for i in range(10)])
    first, second = MemorySink(), MemorySink()
    source = make_source(tmp_path, first, clock)
    source.poll_once()
    source.stop()
    append(path, [prediction(i) for i in range(10, 15)])
    source = make_source(tmp_path, second, clock)
    assert source.poll_once() == 5
    source.stop()
    assert first.prediction_ids() == list(range(10))
    assert second.prediction_ids() == list(range(10, 15))


def test_restart_after_rotation_while_down_finishes_the_renamed_file(tmp_path, log_dir, clock):
    path = log_dir / "p.jsonl"
    append(path, [prediction(i) for i in range(3)])
    first, second = MemorySink(), MemorySink()
    source = make_source(tmp_path, first, clock)
    source.poll_once()
    source.stop()
    append(path, [prediction(3), prediction(4)])  # written while the source is down
    os.rename(path, log_dir / "p.jsonl.1")
    append(path, [prediction(5)])
    source = make_source(tmp_path, second, clock)
    source.poll_once()
    source.stop()
    assert first.prediction_ids() + second.prediction_ids() == [0, 1, 2, 3, 4, 5]


def test_restart_reads_a_different_file_with_the_same_inode_from_the_start(
    tmp_path, log_dir, clock
):
    path = log_dir / "p.jsonl"
    append(path, [prediction(i) for i in range(3)])
    source = make_source(tmp_path, MemorySink(), clock)
    source.poll_once()
    source.stop()
    with path.open("w", encoding="utf-8") as file:  # same inode, other content
        file.write("".join(prediction(i) for i in range(50, 56)))
    second = MemorySink()
    source = make_source(tmp_path, second, clock)
    source.poll_once()
    source.stop()
    assert second.prediction_ids() == [50, 51, 52, 53, 54, 55]


def test_bad_lines_are_counted_by_reason_and_logged_with_their_line(
    tmp_path, log_dir, sink, clock, caplog
):
    path = log_dir / "p.jsonl"
    lines = [
        prediction(0),
        "{not json\n",
        "\n",
        "[1, 2]\n",
        '{"id": "r0"}\n',
        '{"id": "r0", "label": 1, "timestamp": 5}\n',
        b"\xff\xfe\n".decode("latin-1"),
        '"a string"\n',
        prediction(1),
    ]
    with path.open("w", encoding="latin-1") as file:
        file.write("".join(lines))
    source = make_source(tmp_path, sink, clock)
    with caplog.at_level(logging.WARNING):
        assert source.poll_once() == len(lines)
    source.stop()
    assert sink.prediction_ids() == [0, 1]
    assert sink.labels == [{"id": "r0", "label": 1, "timestamp": 5}]
    assert sink.rejected == {"invalid_json": 2, "not_a_record": 3}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}:2: line rejected: invalid_json"]  # later ones rate-limited


def test_batches_keep_file_order_within_each_kind(tmp_path, log_dir, sink, clock):
    label = '{{"id": "r{0}", "label": 1}}\n'.format
    lines = [prediction(0), label(0), prediction(1), label(1), prediction(2), prediction(3)]
    append(log_dir / "p.jsonl", lines)
    source = make_source(tmp_path, sink, clock, batch_size=4)
    source.poll_once()
    source.stop()
    # Labels of a batch go first (only they can fail as a whole, see the next test).
    assert sink.calls == [("labels", 2), ("predictions", 2), ("predictions", 2)]
    assert sink.prediction_ids() == [0, 1, 2, 3]
    assert [record["id"] for record in sink.labels] == ["r0", "r1"]


class LabelStoreDownSink(MemorySink):
    """A sink whose label store is down for the first ``down`` label calls."""

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down

    def ingest_labels(self, model: str, records: Sequence[object]) -> Outcome:
        if self.down:
            self.down -= 1
            raise StoreUnavailableError("label store redis://r:6379/0 unavailable")
        return super().ingest_labels(model, records)


def test_a_batch_whose_labels_fail_is_read_again_and_counted_once(tmp_path, log_dir, clock):
    label = '{{"id": "r{0}", "label": 1}}\n'.format
    append(log_dir / "p.jsonl", [prediction(0), label(0), prediction(1)])
    sink = LabelStoreDownSink(down=2)
    source = make_source(tmp_path, sink, clock)
    source.poll_once()
    source.poll_once()
    assert (sink.predictions, sink.labels) == ([], [])  # nothing of the batch counted yet
    source.poll_once()
    source.stop()
    assert sink.prediction_ids() == [0, 1]  # counted once, not once per attempt
    assert [record["id"] for record in sink.labels] == ["r0"]


def test_a_line_longer_than_the_limit_is_skipped_and_counted(tmp_path, log_dir, sink, clock):
    path = log_dir / "p.jsonl"
    long_line = json.dumps({"features": {"blob": "x" * 300}}) + "\n"
    append(path, [prediction(0), long_line[:150]])
    source = make_source(tmp_path, sink, clock, max_line_bytes=128)
    source.poll_once()
    append(path, [long_line[150:], prediction(1)])  # the long line ends later
    source.poll_once()
    source.stop()
    assert sink.prediction_ids() == [0, 1]
    assert sink.rejected == {"line_too_long": 1}


def test_an_unfinished_last_line_of_a_rotated_file_is_counted(tmp_path, log_dir, sink, clock):
    path = log_dir / "p.jsonl"
    append(path, [prediction(0), '{"features": '])
    source = make_source(tmp_path, sink, clock, rotated_grace=1.0)
    source.poll_once()
    os.rename(path, log_dir / "old")
    source.poll_once()
    clock.now += 2
    source.poll_once()
    source.stop()
    assert sink.prediction_ids() == [0]
    assert sink.rejected == {"incomplete_line": 1}


def test_a_failing_sink_gets_the_same_batch_again_and_nothing_twice(tmp_path, log_dir, clock):
    path = log_dir / "p.jsonl"
    append(path, [prediction(i) for i in range(4)])
    sink = MemorySink(fail_calls=1)
    source = make_source(tmp_path, sink, clock)
    assert source.poll_once() == 0
    # nothing accepted: the file is checkpointed (it was seen) at offset 0
    assert [p["offset"] for p in saved_positions(tmp_path).values()] == [0]
    assert source.poll_once() == 4
    source.stop()
    assert sink.prediction_ids() == [0, 1, 2, 3]


def test_sink_errors_are_logged_with_the_line_of_the_record(tmp_path, log_dir, clock, caplog):
    path = log_dir / "p.jsonl"
    append(path, ['{"id": "x", "label": 0}\n', prediction(0), prediction(1)])
    source = make_source(tmp_path, MemorySink(reject_index=1), clock)
    with caplog.at_level(logging.WARNING):
        source.poll_once()
    source.stop()
    assert [r.getMessage() for r in caplog.records] == [f"{path}:3: record rejected: bad"]


def test_a_corrupt_checkpoint_stops_start_up_naming_the_file(tmp_path, log_dir, sink, clock):
    state = tmp_path / "state"
    state.mkdir()
    bad = state / checkpoint_name(str(log_dir / "p*.jsonl"), "m")
    bad.write_text('{"version": 1, "files": {"12": {}}}')
    with pytest.raises(ValueError, match=rf"{bad}: not a modelmon JSONL checkpoint: files.12"):
        make_source(tmp_path, sink, clock)


def test_without_state_dir_nothing_is_written(tmp_path, log_dir, sink, clock):
    append(log_dir / "p.jsonl", [prediction(0)])
    source = make_source(tmp_path, sink, clock, state_dir=None)
    source.poll_once()
    source.stop()
    assert sink.prediction_ids() == [0]
    assert not (tmp_path / "state").exists()


def test_background_thread_follows_and_checkpoints_on_stop(tmp_path, log_dir, sink):
    source = JsonlSource(
        str(log_dir / "p*.jsonl"), "m", sink, state_dir=tmp_path / "state", poll_interval=0.01
    )
    source.start()
    append(log_dir / "p.jsonl", [prediction(i) for i in range(3)])
    deadline = time.monotonic() + 10
    while len(sink.predictions) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    source.stop()
    assert sink.prediction_ids() == [0, 1, 2]
    [position] = saved_positions(tmp_path).values()
    assert position["offset"] == (log_dir / "p.jsonl").stat().st_size
    assert position["line"] == 3


def test_a_second_start_is_refused(tmp_path, log_dir, sink, clock):
    source = make_source(tmp_path, sink, clock)
    source.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            source.start()
    finally:
        source.stop()


def test_temporary_files_of_an_interrupted_checkpoint_are_removed(tmp_path, log_dir, sink, clock):
    state = tmp_path / "state"
    state.mkdir()
    leftover = state / f".{checkpoint_name(str(log_dir / 'p*.jsonl'), 'm')}.k3j2"
    leftover.write_text('{"version": 1, "fi')
    make_source(tmp_path, sink, clock).stop()
    assert not leftover.exists()


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=25),
    restarts=st.lists(st.booleans(), min_size=25, max_size=25),
    batch_size=st.integers(min_value=1, max_value=5),
)
def test_any_split_of_the_bytes_with_restarts_yields_each_line_once(sizes, restarts, batch_size):
    """However the writer's bytes are split (mid-line, mid-character of a line's JSON)
    and whenever the source restarts from its checkpoint, each line arrives once."""
    data = "".join(prediction(i) for i in range(12)).encode()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "log").mkdir()
        sink, clock = MemorySink(), FakeClock()
        source = make_source(root, sink, clock, batch_size=batch_size)
        written = 0
        for size, restart in zip(sizes, restarts, strict=False):
            with (root / "log" / "p.jsonl").open("ab") as file:
                file.write(data[written : written + size])
            written = min(len(data), written + size)
            source.poll_once()
            if restart:
                source.stop()
                source = make_source(root, sink, clock, batch_size=batch_size)
        with (root / "log" / "p.jsonl").open("ab") as file:
            file.write(data[written:])
        source.poll_once()
        source.stop()
    assert sink.prediction_ids() == list(range(12))
    assert sink.rejected == Counter()
