"""The Redis join store on a real redis-server: what only a shared store must get right.

Joins at most once when several replicas (store objects with their own connections)
race on one id; large calls cut into pipelined chunks; a server that is down, killed or
password-protected; recovery without a new store. The behaviour shared with the
embedded stores runs in test_labels_store.py on all three.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from realbin import free_port
from redisbin import RedisServer, redis_server, require_redis_client

from modelmon.labels import LabelRecord, PendingPrediction, StoreUnavailableError
from modelmon.labels.redis_store import RedisLabelStore

M = "credit-risk"


def pred(i: int | str, prediction: str | float = "1", score: object = 0.75) -> PendingPrediction:
    return PendingPrediction(str(i), "v1", 10.0, prediction, score)  # type: ignore[arg-type]


def label(i: int | str, value: str | float = "1") -> LabelRecord:
    return LabelRecord(str(i), value, 20.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as started:
        yield started


@pytest.fixture
def url(server: RedisServer) -> str:
    server.client().flushdb()  # type: ignore[attr-defined]
    return server.url


def open_at(url: str, **options: object) -> RedisLabelStore:
    settings: dict[str, object] = {"ttl_seconds": 3600.0, "max_pending": 10**6}
    settings.update(options)
    return RedisLabelStore.from_url(url, **settings)  # type: ignore[arg-type]


def test_two_replicas_racing_on_the_same_labels_join_each_once(url: str) -> None:
    """Four "replicas" send the same 2000 labels at the same moment: every prediction
    joins exactly once over all of them; the others see duplicates."""
    replicas = [open_at(url) for _ in range(4)]
    n = 2000
    replicas[0].add_predictions(M, [pred(i) for i in range(n)])
    labels = [label(i) for i in range(n)]
    start = threading.Barrier(len(replicas))
    results: list[tuple[list[str], int]] = []

    def send(store: RedisLabelStore) -> None:
        start.wait()
        for lo in range(0, n, 100):  # small requests interleave across replicas
            result = store.add_labels(M, labels[lo : lo + 100])
            results.append(([p.id for p in result.joined], result.duplicates))

    threads = [threading.Thread(target=send, args=(s,)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    joins = Counter(ident for ids, _ in results for ident in ids)
    assert sorted(joins, key=int) == [str(i) for i in range(n)]
    assert set(joins.values()) == {1}
    assert sum(d for _, d in results) == (len(replicas) - 1) * n
    assert replicas[1].pending(M) == 0
    assert replicas[2].orphans(M) == 0
    for store in replicas:
        store.close()


def test_a_large_call_is_chunked_and_evicts_across_chunks(url: str) -> None:
    store = open_at(url, max_pending=2500)
    ids = [f"id-{i:05d}" for i in range(3000)]
    items = [pred(i) for i in ids] + [pred(ids[0])]  # a repeat after three chunks
    result = store.add_predictions(M, items)
    assert (result.duplicates, result.evicted) == (1, 500)
    assert store.pending(M) == 2500
    joined = store.add_labels(M, [label(i) for i in ids]).joined
    assert sorted(p.id for p in joined) == ids[500:]  # the oldest 500 (by id: same time)
    assert store.orphans(M) == 500
    store.close()


def test_payloads_round_trip(url: str) -> None:
    store = open_at(url)
    store.add_predictions(
        M,
        [
            PendingPrediction("a", "v2", 1.25, "cat", {"cat": 0.7, "dog": 0.3}),
            PendingPrediction("b", "v3", 2.5, 212.5, None),
            PendingPrediction("c", "v1", 3.0, "1", 10**400),  # beyond float range: kept
        ],
    )
    pairs = {p.id: p for p in store.add_labels(M, [label("a", "dog"), label("b", 200.0)]).joined}
    assert pairs["a"] == ("a", "v2", "cat", {"cat": 0.7, "dog": 0.3}, "dog", 1.25, 20.0)
    assert pairs["b"] == ("b", "v3", 212.5, None, 200.0, 2.5, 20.0)
    assert store.add_labels(M, [label("c")]).joined[0].score == 10**400
    store.close()


def test_expiry_runs_in_bounded_steps(url: str, fake_clock) -> None:
    store = RedisLabelStore.from_url(
        url, ttl_seconds=100.0, max_pending=10**6, clock=fake_clock, expire_batch=7
    )
    store.add_predictions(M, [pred(i) for i in range(50)])
    store.add_labels(M, [label(f"o{i}") for i in range(20)])
    fake_clock.advance(3601)
    result = store.expire()
    assert (result.expired, result.unmatched) == ({M: 50}, {M: 20})
    assert (store.pending(M), store.orphans(M)) == (0, 0)
    store.close()


def test_a_store_that_cannot_be_reached_fails_fast_and_says_why() -> None:
    require_redis_client()
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    store = open_at(url, retry_after=30.0)
    with pytest.raises(StoreUnavailableError, match=r"label store redis://127\.0\.0\.1:\d+/0 "):
        store.add_labels(M, [label(1)])
    started = time.perf_counter()
    with pytest.raises(StoreUnavailableError, match="no label of this request was counted"):
        store.add_labels(M, [label(1)])
    with pytest.raises(StoreUnavailableError, match="counted but cannot be joined"):
        store.add_predictions(M, [pred(1)])
    with pytest.raises(StoreUnavailableError):
        store.check()
    assert store.pending(M) == 0  # the last count seen (none): never raises
    assert time.perf_counter() - started < 0.1  # within retry_after: not dialled again
    store.close()


def test_service_resumes_after_redis_is_killed_and_restarted(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        store = open_at(server.url, retry_after=0.2)
        store.add_predictions(M, [pred(i) for i in range(10)])
        assert store.pending(M) == 10
        server.kill()
        with pytest.raises(StoreUnavailableError):
            store.add_labels(M, [label(i) for i in range(5)])
        assert store.pending(M) == 10  # the last count seen
        server.start()  # same port and data directory: the append-only file is replayed
        time.sleep(0.25)
        result = store.add_labels(M, [label(i) for i in range(10)])  # no new store
        assert sorted(p.id for p in result.joined) == [str(i) for i in range(10)]
        store.check()
        store.close()
    finally:
        server.stop()


def test_a_password_comes_from_the_caller_not_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        server.client().config_set("requirepass", "s3cret")  # type: ignore[attr-defined]
        with pytest.raises(StoreUnavailableError, match="label store"):
            open_at(server.url).check()  # no password: refused, reported as unavailable
        store = RedisLabelStore.from_url(
            server.url, password="s3cret", ttl_seconds=60.0, max_pending=10
        )
        store.check()
        assert store.add_predictions(M, [pred(1)]).duplicates == 0
        store.close()
    finally:
        server.stop()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # which replica
            st.sampled_from(["p", "l"]),
            st.lists(st.integers(0, 15), max_size=6),
        ),
        max_size=25,
    )
)
def test_every_id_joins_once_whatever_the_order_and_replica(server: RedisServer, ops) -> None:
    """Against a plain model: an id joins once both its prediction and its label have
    been sent to any replicas, in either order; everything else is pending, orphan or
    duplicate."""
    server.client().flushdb()  # type: ignore[attr-defined]
    replicas = [open_at(server.url) for _ in range(3)]
    predicted: set[int] = set()
    labelled: set[int] = set()
    joins: Counter[str] = Counter()
    duplicates = sent = 0
    for replica, kind, ids in ops:
        store = replicas[replica]
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
    assert replicas[0].pending(M) == len(predicted - labelled)
    assert replicas[1].orphans(M) == len(labelled - predicted)
    assert sent == len(predicted) + len(labelled) + duplicates
    for store in replicas:
        store.close()
