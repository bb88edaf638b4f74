"""modelmon.client.Client against a real ``modelmon serve`` process.

What the client says it delivered is checked against the exporter's own counters on
/metrics (``modelmon_events_total``, ``modelmon_labels_total``). The 429 storm is tested
in tests/unit/test_client.py against a stub server, because the real exporter cannot be
made to answer 429 on demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import realbin
from integrations_exporter import MODEL, VERSION, make_profile, sample, serving, write_config

from modelmon.client import Client

pytestmark = pytest.mark.integration

TOKEN = "integration-token"


@dataclass
class Setup:
    config: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self) -> float:
        return sample(self.port, "modelmon_events_total", model=MODEL, version=VERSION)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_profile(tmp_path_factory.mktemp("profile"))


@pytest.fixture
def setup(tmp_path: Path, profile: Path) -> Setup:
    (tmp_path / "token").write_text(TOKEN + "\n")
    port = realbin.free_port()
    config = write_config(tmp_path, port, profile, auth={"token_file": str(tmp_path / "token")})
    return Setup(config, port, tmp_path / "exporter.log")


@pytest.fixture
def exporter(setup: Setup) -> Iterator[Setup]:
    with serving(setup.config, setup.port, setup.log):
        yield setup


def features(i: int) -> dict[str, object]:
    return {"age": 20 + i % 50, "income": 30000.0 + i, "country": ("DE", "FR", "ES")[i % 3]}


def test_every_record_the_client_sent_is_counted_by_the_exporter(exporter):
    with Client(exporter.url, MODEL, TOKEN, batch_size=100, flush_interval=0.05) as client:
        for i in range(1000):
            client.log_prediction(features(i), i % 2, id=f"r{i}", score=(i % 100) / 100)
        for i in range(0, 1000, 5):
            client.log_label(f"r{i}", (i // 5) % 2)
        assert client.flush(timeout=60)
        assert (client.sent, client.failed, client.dropped, client.rejected) == (1200, 0, 0, 0)
    assert exporter.events() == 1000
    assert sample(exporter.port, "modelmon_labels_total", model=MODEL, version=VERSION) == 200


def test_non_finite_and_numpy_values_are_accepted_as_data_quality(exporter):
    np = pytest.importorskip("numpy")
    with Client(exporter.url, MODEL, TOKEN, flush_interval=0.05) as client:
        client.log_prediction({"age": math.nan, "income": np.float32(5e4), "country": "DE"},
                              np.int64(1), score=np.float64(0.7))  # fmt: skip
        assert client.flush(timeout=30)
        assert (client.sent, client.rejected, client.failed) == (1, 0, 0)
    assert exporter.events() == 1
    missing = sample(exporter.port, "modelmon_column_missing_total", model=MODEL,
                     version=VERSION, role="feature", column="age")  # fmt: skip
    assert missing == 1


def test_records_logged_while_the_exporter_is_down_arrive_once_it_is_up(setup):
    """The client starts first; the exporter comes up later. Everything up to the queue
    bound is delivered; the overflow is dropped and counted, never raised."""
    client = Client(setup.url, MODEL, TOKEN, queue_size=1000, batch_size=100,
                    flush_interval=0.05, backoff_initial=0.05, backoff_max=0.5)  # fmt: skip
    try:
        for i in range(1500):
            client.log_prediction(features(i), i % 2)
        assert not client.flush(timeout=1.0)  # nothing listens yet
        with serving(setup.config, setup.port, setup.log):
            assert client.flush(timeout=60)
            delivered = setup.events()
    finally:
        client.close(timeout=5)
    assert client.failed == 0
    assert client.sent + client.dropped == 1500
    # the queue bound, plus at most the one batch the sender held while retrying
    assert 1000 <= client.sent <= 1100
    assert delivered == client.sent


def test_a_wrong_token_fails_the_batch_without_retrying(exporter):
    with Client(exporter.url, MODEL, "wrong", flush_interval=0.05) as client:
        client.log_prediction(features(0), 1)
        assert client.flush(timeout=30)
        assert (client.sent, client.failed) == (0, 1)
    assert exporter.events() == 0


def test_an_unknown_model_fails_the_batch(exporter):
    with Client(exporter.url, "no-such-model", TOKEN, flush_interval=0.05) as client:
        client.log_label("r1", 1)
        assert client.flush(timeout=30)
        assert (client.sent, client.failed) == (0, 1)
