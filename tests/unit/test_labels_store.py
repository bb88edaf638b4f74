"""The label join store: joins, duplicates, orphans, expiry, eviction, persistence.

Each behaviour runs on both stores: the in-memory one (no ``state_dir``) and the SQLite
file. Durability is checked with a real subprocess killed by SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redisbin import RedisServer, redis_server

from modelmon.labels import (
    JoinStore,
    LabelRecord,
    LabelStore,
    MemoryLabelStore,
    PendingPrediction,
    open_store,
)
from modelmon.labels.redis_store import RedisLabelStore

StoreFactory = Callable[..., JoinStore]
M = "credit-risk"


def pred(i: int | str, prediction: str | float = "1", score: object = 0.75, ts: float = 10.0):
    return PendingPrediction(str(i), "v1", ts, prediction, score)  # type: ignore[arg-type]


def label(i: int | str, value: str | float = "1", ts: float = 20.0) -> LabelRecord:
    return LabelRecord(str(i), value, ts)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the module; each test flushes it first."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", "file", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, fake_clock
) -> Iterator[StoreFactory]:
    opened: list[JoinStore] = []
    server: RedisServer | None = None
    if request.param == "redis":
        server = request.getfixturevalue("redis")
        server.client().flushdb()  # type: ignore[attr-defined]

    def make(**kwargs: object) -> JoinStore:
        options: dict[str, object] = {
            "ttl_seconds": 3600.0,
            "max_pending": 1000,
            "clock": fake_clock,
        }
        options.update(kwargs)
        store: JoinStore
        if server is not None:
            store = RedisLabelStore.from_url(server.url, **options)  # type: ignore[arg-type]
        else:
            path = None if request.param == "memory" else tmp_path / "labels.sqlite"
            store = open_store(path, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_label_joins_its_prediction(make_store: StoreFactory) -> None:
    store = make_store()
    result = store.add_predictions(
        M,
        [
            pred("a", "1", 0.8, ts=100.0),
            pred("b", "cat", {"cat": 0.7, "dog": 0.3}),
            pred("c", 12.5, None),
        ],
    )
    assert (result.joined, result.evicted, result.duplicates) == ([], 0, 0)
    assert store.pending(M) == 3
    joined = store.add_labels(
        M, [label("a", "0", ts=160.0), label("b", "dog"), label("c", 11.0)]
    ).joined
    by_id = {p.id: p for p in joined}
    assert set(by_id) == {"a", "b", "c"}
    a = by_id["a"]
    assert (a.version, a.prediction, a.score, a.label) == ("v1", "1", 0.8, "0")
    assert (a.prediction_ts, a.label_ts) == (100.0, 160.0)
    assert by_id["b"].score == {"cat": 0.7, "dog": 0.3}
    assert (by_id["c"].prediction, by_id["c"].label, by_id["c"].score) == (12.5, 11.0, None)
    assert store.pending(M) == 0


def test_second_label_is_a_duplicate_not_a_second_join(make_store: StoreFactory) -> None:
    store = make_store()
    store.add_predictions(M, [pred(1), pred(2)])
    first = store.add_labels(M, [label(1), label(1, "0")])  # repeated within the call
    assert [p.id for p in first.joined] == ["1"]
    assert first.joined[0].label == "1"  # the first of the repeats wins
    assert first.duplicates == 1
    again = store.add_labels(M, [label(1), label(2)])
    assert [p.id for p in again.joined] == ["2"]
    assert again.duplicates == 1
    assert store.orphans(M) == 0  # a duplicate does not wait as an orphan
    resent = store.add_predictions(M, [pred(1), pred(3), pred(3)])
    assert resent.duplicates == 2  # an already joined id, and a repeat in the call
    assert store.pending(M) == 1


def test_orphan_label_joins_when_its_prediction_arrives(make_store: StoreFactory) -> None:
    store = make_store()
    early = store.add_labels(M, [label("x", "0", ts=5.0), label("x", "1")])
    assert (early.joined, early.duplicates, store.orphans(M)) == ([], 1, 1)
    assert store.add_labels(M, [label("x")]).duplicates == 1  # already waiting
    result = store.add_predictions(M, [pred("x", "1", 0.9, ts=3.0), pred("y")])
    (pair,) = result.joined
    assert (pair.id, pair.prediction, pair.score, pair.label) == ("x", "1", 0.9, "0")
    assert (pair.prediction_ts, pair.label_ts) == (3.0, 5.0)
    assert (store.orphans(M), store.pending(M)) == (0, 1)
    assert store.add_labels(M, [label("x")]).duplicates == 1
    assert store.add_predictions(M, [pred("x")]).duplicates == 1


def test_models_are_separate(make_store: StoreFactory) -> None:
    store = make_store()
    store.add_predictions("a", [pred(1)])
    store.add_predictions("b", [pred(1, "0")])
    joined = store.add_labels("b", [label(1)]).joined
    assert [p.prediction for p in joined] == ["0"]
    assert (store.pending("a"), store.pending("b")) == (1, 0)


def test_predictions_expire_after_ttl(make_store: StoreFactory, fake_clock) -> None:
    store = make_store(ttl_seconds=100.0, orphan_ttl_seconds=50.0)
    store.add_predictions(M, [pred(1), pred(2)])
    store.add_labels(M, [label("o1")])
    fake_clock.advance(60)
    store.add_predictions(M, [pred(3)])
    store.add_predictions("other", [pred(9)])
    nothing_yet = store.expire()
    assert nothing_yet.expired == {}
    assert nothing_yet.unmatched == {M: 1}  # the orphan waited 60 s > 50 s
    store.add_labels(M, [label(2)])  # joins: not expired
    fake_clock.advance(41)  # predictions 1 (and joined 2) are 101 s old; 3 and 9 41 s
    result = store.expire()
    assert result.expired == {M: 1}
    assert result.unmatched == {}
    assert (store.pending(M), store.pending("other")) == (1, 1)
    late = store.add_labels(M, [label(1), label(3)])
    assert [p.id for p in late.joined] == ["3"]
    assert store.orphans(M) == 1  # the label of the expired prediction waits as an orphan
    # Joined id 2 was forgotten with its ttl: a new prediction with that id is accepted.
    assert store.add_predictions(M, [pred(2)]).duplicates == 0


def test_max_pending_evicts_the_oldest(make_store: StoreFactory, fake_clock) -> None:
    store = make_store(max_pending=3)
    store.add_predictions(M, [pred(1), pred(2)])
    fake_clock.advance(1)
    store.add_labels(M, [label(2)])  # joined rows do not count as pending
    store.add_predictions(M, [pred(3), pred(4)])
    assert store.pending(M) == 3
    fake_clock.advance(1)
    result = store.add_predictions(M, [pred(5), pred(6)])
    assert result.evicted == 2
    assert store.pending(M) == 3
    joined = store.add_labels(M, [label(i) for i in (1, 3, 4, 5, 6)]).joined
    assert sorted(p.id for p in joined) == ["4", "5", "6"]  # 1 and 3 were the oldest
    assert store.orphans(M) == 2
    fake_clock.advance(1)
    store.add_predictions(M, [pred(i) for i in range(10, 15)])  # one call over the limit
    assert store.pending(M) == 3
    assert sorted(p.id for p in store.add_labels(M, [label(i) for i in range(10, 15)]).joined) == [
        "12",
        "13",
        "14",
    ]


def test_per_model_limits(make_store: StoreFactory) -> None:
    store = make_store(max_pending=100)
    store.set_limits("small", ttl_seconds=10.0, max_pending=2)
    assert store.add_predictions("small", [pred(i) for i in range(5)]).evicted == 3
    assert store.add_predictions(M, [pred(i) for i in range(5)]).evicted == 0
    with pytest.raises(ValueError, match="small: expected ttl_seconds > 0"):
        store.set_limits("small", ttl_seconds=0.0, max_pending=2)


def test_max_orphans_evicts_the_oldest_as_unmatched(make_store: StoreFactory, fake_clock) -> None:
    store = make_store(max_orphans=2)
    store.add_labels(M, [label(1)])
    fake_clock.advance(1)
    result = store.add_labels(M, [label(2), label(3)])
    assert result.unmatched == 1
    assert store.orphans(M) == 2
    joined = store.add_predictions(M, [pred(1), pred(2), pred(3)]).joined
    assert sorted(p.id for p in joined) == ["2", "3"]


def test_a_failed_sqlite_call_changes_nothing(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite", ttl_seconds=3600, max_pending=1000)
    store.add_predictions(M, [pred(1)])
    bad = PendingPrediction("2", "v1", 1.0, ["not", "a", "value"], None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.Error):
        store.add_predictions(M, [pred(3), bad])
    assert store.pending(M) == 1
    assert [p.id for p in store.add_labels(M, [label(1), label(3)]).joined] == ["1"]
    store.close()


@pytest.mark.parametrize("path", [None, ":memory:"])
def test_invalid_limits_name_the_argument(path: str | None) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        open_store(path, ttl_seconds=0, max_pending=10)
    with pytest.raises(ValueError, match="max_orphans"):
        open_store(path, ttl_seconds=1, max_pending=10, max_orphans=0)


# --- persistence --------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path, fake_clock) -> None:
    path = tmp_path / "labels.sqlite"
    with LabelStore(path, ttl_seconds=3600, max_pending=100, clock=fake_clock) as store:
        store.add_predictions(M, [pred(i, score={"a": 0.25}) for i in range(5)])
        store.add_labels(M, [label(0), label("early")])
    with LabelStore(path, ttl_seconds=3600, max_pending=100, clock=fake_clock) as store:
        assert (store.pending(M), store.orphans(M)) == (4, 1)
        result = store.add_labels(M, [label(i) for i in range(5)])
        assert sorted(p.id for p in result.joined) == ["1", "2", "3", "4"]
        assert result.joined[0].score == {"a": 0.25}
        assert result.duplicates == 1  # id 0 was joined before the restart
        assert [p.id for p in store.add_predictions(M, [pred("early")]).joined] == ["early"]


def test_a_second_process_cannot_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    with (
        LabelStore(path, ttl_seconds=60, max_pending=10),
        pytest.raises(RuntimeError, match="another modelmon"),
    ):
        LabelStore(path, ttl_seconds=60, max_pending=10)


def test_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ValueError, match="schema version 99, expected 2"):
        LabelStore(path, ttl_seconds=60, max_pending=10)


def test_a_version_1_database_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE predictions (
            seq INTEGER PRIMARY KEY, model TEXT NOT NULL, id TEXT NOT NULL,
            version TEXT NOT NULL, ts REAL NOT NULL, arrived REAL NOT NULL, prediction,
            score, joined_at REAL);
        CREATE UNIQUE INDEX predictions_id ON predictions (model, id);
        CREATE INDEX predictions_age ON predictions (model, arrived);
        CREATE TABLE orphans (
            seq INTEGER PRIMARY KEY, model TEXT NOT NULL, id TEXT NOT NULL,
            label, ts REAL NOT NULL, arrived REAL NOT NULL);
        CREATE UNIQUE INDEX orphans_id ON orphans (model, id);
        CREATE INDEX orphans_age ON orphans (model, arrived);
        INSERT INTO predictions VALUES (1, 'credit-risk', 'a', 'v1', 1.0, 2.0, '1', 0.5, NULL);
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    with LabelStore(path, ttl_seconds=1e12, max_pending=10) as store:
        assert store.pending(M) == 1
        (pair,) = store.add_labels(M, [label("a", "0")]).joined
        assert (pair.prediction, pair.score, pair.label) == ("1", 0.5, "0")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "predictions_age" not in indexes
    conn.close()


_WRITER = textwrap.dedent(
    """
    import sys
    from modelmon.labels import LabelStore, PendingPrediction

    store = LabelStore(sys.argv[1], ttl_seconds=3600, max_pending=10**7)
    batch = 0
    while True:
        items = [PendingPrediction(f"{batch}-{i}", "v1", 1.0, "1", 0.5) for i in range(200)]
        store.add_predictions("m", items)
        print(batch, flush=True)  # printed only after the batch's transaction committed
        batch += 1
    """
)


def test_committed_predictions_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    reported = []
    for line in child.stdout:
        reported.append(int(line))
        if len(reported) == 20:
            break
    os.kill(child.pid, signal.SIGKILL)  # mid-stream: most likely inside a transaction
    # Read the rest through the same buffered reader: communicate() would read the pipe
    # underneath it and miss the lines the loop above had read ahead.
    with child.stdout:
        rest = child.stdout.read()
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    committed = len(reported) + len(rest.split())  # every batch it said it committed

    with LabelStore(path, ttl_seconds=3600, max_pending=10**7) as store:
        pending = store.pending("m")
        # Whole batches only (a transaction is atomic): all reported ones, maybe one more
        # committed between its commit and its print.
        assert pending in (200 * committed, 200 * (committed + 1))
        batches = pending // 200
        labels = [LabelRecord(f"{b}-{i}", "1", 2.0) for b in range(batches + 2) for i in range(200)]
        result = store.add_labels("m", labels)
        ids = [p.id for p in result.joined]
        assert len(ids) == len(set(ids)) == pending  # each joined exactly once
        assert store.pending("m") == 0
        assert store.orphans("m") == 2 * 200  # labels of the batches never written
        assert store.add_labels("m", labels[:pending]).duplicates == pending


# --- a property: whatever the interleaving, each id joins exactly once -------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["p", "l"]), st.lists(st.integers(0, 15), max_size=6)),
        max_size=25,
    )
)
def test_every_id_joins_once_whatever_the_order(ops) -> None:
    """Against a plain model: an id joins when both its prediction and its label have
    been sent (in either order), exactly once; everything else is pending, orphan or
    duplicate."""
    for store in (
        MemoryLabelStore(ttl_seconds=1e9, max_pending=10**6),
        LabelStore(None, ttl_seconds=1e9, max_pending=10**6),
    ):
        _check_joins_once(store, ops)


def _check_joins_once(store: JoinStore, ops: list[tuple[str, list[int]]]) -> None:
    predicted: set[int] = set()
    labelled: set[int] = set()
    joins: Counter[str] = Counter()
    duplicates = 0
    sent = 0
    for kind, ids in ops:
        sent += len(ids)
        if kind == "p":
            result = store.add_predictions(M, [pred(i) for i in ids])
            predicted |= set(ids)
        else:
            result = store.add_labels(M, [label(i) for i in ids])
            labelled |= set(ids)
        joins.update(p.id for p in result.joined)
        duplicates += result.duplicates
    assert set(joins) == {str(i) for i in predicted & labelled}
    assert all(n == 1 for n in joins.values())
    assert store.pending(M) == len(predicted - labelled)
    assert store.orphans(M) == len(labelled - predicted)
    # every record sent is accounted for exactly once
    firsts = len(predicted) + len(labelled)
    assert sent == firsts + duplicates
    store.close()


def test_eviction_still_finds_rows_after_the_clock_went_back(
    make_store: StoreFactory, fake_clock
) -> None:
    store = make_store(max_pending=2)
    assert store.add_predictions(M, [pred(1), pred(2), pred(3)]).evicted == 1
    fake_clock.advance(-100)  # e.g. an NTP step: new rows are "older" than evicted ones
    assert store.add_predictions(M, [pred(4)]).evicted == 1
    assert store.pending(M) == 2
    joined = sorted(p.id for p in store.add_labels(M, [label(2), label(3), label(4)]).joined)
    if isinstance(store, RedisLabelStore):
        assert joined == ["2", "3"]  # by arrival time: 4 "arrived" first
    else:
        assert joined == ["3", "4"]  # the embedded stores by arrival order: 2 came first


# --- the in-memory store's own bookkeeping ------------------------------------------------


def test_memory_store_checks_each_id_when_a_call_repeats_or_reuses_ids(fake_clock) -> None:
    store = MemoryLabelStore(ttl_seconds=3600, max_pending=100, clock=fake_clock)
    assert store.add_predictions(M, [pred(i) for i in range(5)]).duplicates == 0
    result = store.add_predictions(M, [pred(5), pred(5), pred(2), pred(6)])
    assert result.duplicates == 2  # the repeat of 5 and the stored 2
    assert store.pending(M) == 7
    store.add_labels(M, [label(9)])  # an orphan: the next call joins it
    result = store.add_predictions(M, [pred(8), pred(9), pred(9)])
    assert [p.id for p in result.joined] == ["9"]
    assert result.duplicates == 1
    assert (store.pending(M), store.orphans(M)) == (8, 0)


def test_memory_store_evicts_oldest_across_calls_skipping_joined_rows(fake_clock) -> None:
    store = MemoryLabelStore(ttl_seconds=3600, max_pending=6, clock=fake_clock)
    for start in (0, 3, 6):  # three calls of three
        store.add_predictions(M, [pred(i) for i in range(start, start + 3)])
        fake_clock.advance(1)
    # 0..5 were stored, then 6..8 pushed out the three oldest (0, 1, 2).
    joined = store.add_labels(M, [label(i) for i in (0, 3, 4, 7)]).joined
    assert sorted(p.id for p in joined) == ["3", "4", "7"]
    result = store.add_predictions(M, [pred(i) for i in range(10, 14)])
    # 5 waiting (5, 6, 8) + 4 new = 7 > 6: one more goes, the oldest waiting one: 5.
    assert result.evicted == 1
    joined = store.add_labels(M, [label(i) for i in (5, 6, 8, 10, 13)]).joined
    assert sorted(p.id for p in joined) == ["10", "13", "6", "8"]


def test_memory_store_expires_per_call_and_keeps_payloads(fake_clock) -> None:
    store = MemoryLabelStore(ttl_seconds=100, max_pending=100, clock=fake_clock)
    store.add_predictions(
        M,
        [
            PendingPrediction("a", "v1", 1.5, "1", None),
            PendingPrediction("b", "v2", 2.5, "0", 1),
            PendingPrediction("c", "v1", 3.5, "1", 0.25),
        ],
    )
    store.add_predictions(M, [PendingPrediction("d", "v3", 4.5, "2", {"0": 0.1, "2": 0.9})])
    fake_clock.advance(60)
    store.add_predictions(M, [pred("e")])
    pairs = {p.id: p for p in store.add_labels(M, [label("b"), label("d", "2", 7.0)]).joined}
    assert pairs["b"] == ("b", "v2", "0", 1.0, "1", 2.5, 20.0)
    assert pairs["d"] == ("d", "v3", "2", {"0": 0.1, "2": 0.9}, "2", 4.5, 7.0)
    fake_clock.advance(50)  # the first two calls are 110 s old, the third 50 s
    assert store.expire().expired == {M: 2}  # a and c; b and d had joined
    assert store.pending(M) == 1
    pair = store.add_labels(M, [label("e")]).joined[0]
    assert (pair.id, pair.score) == ("e", 0.75)
    store.add_predictions("house", [PendingPrediction("r", "v1", 5.0, 212.5, None)])
    pair = store.add_labels("house", [LabelRecord("r", 200.0, 6.0)]).joined[0]
    assert (pair.prediction, pair.label) == (212.5, 200.0)
    assert type(pair.prediction) is float  # not a numpy scalar
    huge = 10**400  # a JSON integer beyond float range: kept as given
    store.add_predictions(M, [PendingPrediction("h", "v1", 5.0, "1", huge)])
    assert store.add_labels(M, [label("h")]).joined[0].score == huge
    # An expired id is forgotten; a joined one of the expired calls too (its ttl ended).
    assert store.add_predictions(M, [pred("a"), pred("b")]).duplicates == 0


def test_memory_store_forgets_joined_ids_beyond_max_pending(fake_clock) -> None:
    store = MemoryLabelStore(ttl_seconds=3600, max_pending=3, clock=fake_clock)
    store.add_predictions(M, [pred(i) for i in range(3)])
    store.add_labels(M, [label(i) for i in range(3)])
    store.add_predictions(M, [pred(3)])
    store.add_labels(M, [label(3)])  # the fourth joined id pushes out the first
    result = store.add_predictions(M, [pred(i) for i in range(4)])
    assert result.duplicates == 3
    assert store.pending(M) == 1


def test_memory_store_drops_whole_calls_that_still_wait(fake_clock) -> None:
    store = MemoryLabelStore(ttl_seconds=100, max_pending=5, clock=fake_clock)
    store.add_predictions(M, [pred(i) for i in range(4)])
    fake_clock.advance(10)
    store.add_predictions(M, [pred(i) for i in range(4, 8)])  # evicts 0, 1, 2 at once
    assert store.pending(M) == 5
    fake_clock.advance(95)  # the first call is 105 s old, the second 95 s
    assert store.expire().expired == {M: 1}  # 3, the last of the first call
    fake_clock.advance(10)
    assert store.expire().expired == {M: 4}
    assert store.pending(M) == 0
    assert store.add_predictions(M, [pred(i) for i in range(8)]).duplicates == 0
