"""The whole alerting path with real programs: exporter -> Prometheus -> Alertmanager -> webhook.

The modelmon exporter (``python -m modelmon serve``), Prometheus and Alertmanager run on
127.0.0.1 with free ports and the shipped configs, derived by scripts/bundle_config.py the
same way scripts/stack.sh derives them: targets on localhost, 1s scrape and evaluation,
1s Alertmanager timings, every receiver replaced by a webhook to a receiver in this test
(``/webhook``, ``/pager``, ``/chat``), and every alert's ``for`` shortened to a few
seconds. Rule expressions are the shipped ones, unchanged.

Scenario (one model, features x1, x2, cat; score from x1):

1. stationary traffic and truthful labels: no alert is pending or firing, nobody is
   notified;
2. x2 shifted by two reference standard deviations: ModelmonFeatureDrift with
   model and column labels reaches the webhook and chat receivers (time-to-page
   measured), and nothing else fires;
3. wrong labels: ModelmonAccuracyDrop pages (pager receiver);
4. stationary traffic dilutes the drift and right labels restore accuracy: both alerts
   resolve.

A second test checks the inhibit rules in a real Alertmanager.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import realbin
import requests
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MODEL = "credit-risk"
VERSION = "v1"
# Every alert's `for` in the test copy of the rules: long enough that one odd evaluation
# does not fire, short enough for the test.
FOR = "3s"
X2_SHIFT = 4.0  # two reference standard deviations of x2 ~ N(5, 2)


def _bundle_config() -> Any:
    """scripts/bundle_config.py, the config derivation shared with scripts/stack.sh."""
    import bundle_config

    return bundle_config


# --- a webhook receiver -----------------------------------------------------------------


@dataclass
class Notification:
    """One webhook call of Alertmanager: the receiver path, the body, when it came."""

    path: str
    body: dict[str, Any]
    at: float  # time.monotonic()

    def alerts(self, status: str = "firing") -> list[dict[str, Any]]:
        """The alerts of this notification with ``status`` (firing or resolved)."""
        return [a for a in self.body.get("alerts", []) if a.get("status") == status]


@dataclass
class WebhookSink:
    """Collects Alertmanager webhook calls in memory."""

    url: str = ""
    _received: list[Notification] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, notification: Notification) -> None:
        with self._lock:
            self._received.append(notification)

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def wait_for(
        self, match: Callable[[Notification], bool], timeout: float, why: Callable[[], str]
    ) -> Notification:
        """The first notification that matches; ``why()`` explains a timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [n for n in self.received() if match(n)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no matching notification within {timeout}s\n{why()}")


@contextmanager
def webhook_sink() -> Iterator[WebhookSink]:
    """A ThreadingHTTPServer on a free port that stores every POST as a Notification."""
    sink = WebhookSink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            sink.add(Notification(self.path, body, time.monotonic()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- traffic ------------------------------------------------------------------------------


class Traffic:
    """Records of a binary classifier: x1 ~ N(0,1), x2 ~ N(5,2), cat; score = sigmoid(2 x1).

    The model ignores x2, so shifting x2 drifts one feature and nothing else.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_id = 0
        self.sent: dict[str, tuple[int, float]] = {}  # id -> (prediction, score)

    def rows(self, n: int, x2_shift: float = 0.0) -> dict[str, np.ndarray]:
        x1 = self.rng.normal(0.0, 1.0, n)
        score = 1.0 / (1.0 + np.exp(-2.0 * x1))
        return {
            "x1": x1,
            "x2": self.rng.normal(5.0, 2.0, n) + x2_shift,
            "cat": self.rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "score": score,
            "pred": (score > 0.5).astype(int),
            "label": (self.rng.random(n) < score).astype(int),  # calibrated truth
        }

    def predictions(self, n: int, x2_shift: float = 0.0) -> list[dict[str, Any]]:
        rows = self.rows(n, x2_shift)
        records = []
        for i in range(n):
            record_id = f"req-{self.next_id}"
            self.next_id += 1
            self.sent[record_id] = (int(rows["pred"][i]), float(rows["score"][i]))
            records.append(
                {
                    "id": record_id,
                    "features": {
                        "x1": float(rows["x1"][i]),
                        "x2": float(rows["x2"][i]),
                        "cat": str(rows["cat"][i]),
                    },
                    "prediction": int(rows["pred"][i]),
                    "score": float(rows["score"][i]),
                }
            )
        return records

    def labels(self, records: list[dict[str, Any]], how: str) -> list[dict[str, Any]]:
        """Labels for ``records``: ``truth`` drawn from the score, ``right`` or ``wrong``."""
        out = []
        for record in records:
            prediction, score = self.sent[record["id"]]
            if how == "truth":
                label = int(self.rng.random() < score)
            elif how == "right":
                label = prediction
            else:
                label = 1 - prediction
            out.append({"id": record["id"], "label": label})
        return out


def write_reference(path: Path, rows: int = 5000) -> None:
    """A reference CSV from the stationary distribution (over 1000 rows, so drift uses
    distances, not p-values that flap at 5%)."""
    data = Traffic(seed=1).rows(rows)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x1", "x2", "cat", "pred", "score", "label"])
        writer.writerows(
            zip(
                data["x1"],
                data["x2"],
                data["cat"],
                data["pred"],
                data["score"],
                data["label"],
                strict=True,
            )
        )


# --- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    """Addresses and processes of one running stack."""

    exporter_url: str
    prometheus_url: str
    alertmanager_url: str
    processes: dict[str, realbin.Process]
    sink: WebhookSink

    def post(self, kind: str, records: list[dict[str, Any]]) -> None:
        url = f"{self.exporter_url}/v1/models/{MODEL}/{kind}"
        response = requests.post(url, json=records, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rejected"] == 0, body
        assert body["accepted"] == len(records), body

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def wait_query(self, expr: str, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{expr} returned nothing within {timeout}s\n{self.diagnose()}")

    def diagnose(self) -> str:
        """Logs and state for a failure message."""
        parts = [f"notifications: {[(n.path, n.body.get('status')) for n in self.sink.received()]}"]
        try:
            parts.append(f"ALERTS: {self.query('ALERTS')}")
        except requests.RequestException as error:
            parts.append(f"ALERTS: {error}")
        for name, process in self.processes.items():
            parts.append(f"--- {name} log ---\n{process.log(3000)}")
        return "\n".join(parts)


def _exporter_config(tmp_path: Path) -> Path:
    reference_csv = tmp_path / "reference.csv"
    write_reference(reference_csv)
    profile = tmp_path / "reference.profile.json"
    subprocess.run(
        [sys.executable, "-m", "modelmon", "profile", str(reference_csv), "--output",
         str(profile), "--prediction", "pred", "--score", "score", "--label", "label"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    config = {
        "models": [
            {
                "name": MODEL,
                "task": "binary_classification",
                "version": VERSION,
                "reference": profile.name,
                "windows": ["5m", "1h", "1d"],
            }
        ],
        "collectors": {"gpu": False},
    }
    path = tmp_path / "modelmon.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_stack(tmp_path: Path, sink: WebhookSink) -> Iterator[Stack]:
    """Exporter, Alertmanager and Prometheus on free ports, stopped at exit."""
    prometheus = realbin.require_binary("prometheus")
    alertmanager = realbin.require_binary("alertmanager", "prometheus-alertmanager")
    bundle = _bundle_config()
    exporter_addr = f"127.0.0.1:{realbin.free_port()}"
    prometheus_addr = f"127.0.0.1:{realbin.free_port()}"
    alertmanager_addr = f"127.0.0.1:{realbin.free_port()}"
    files = bundle.write_stack(
        tmp_path / "stack",
        exporter=exporter_addr,
        prometheus=prometheus_addr,
        alertmanager=alertmanager_addr,
        webhook_base_url=sink.url,
        scrape_interval="1s",
        evaluation_interval="1s",
        for_override=FOR,
        timings=bundle.RouteTimings("1s", "1s", "1h"),
    )
    config = _exporter_config(tmp_path)
    with ExitStack() as stack:
        processes: dict[str, realbin.Process] = {}
        processes["exporter"] = stack.enter_context(
            realbin.running(
                [sys.executable, "-m", "modelmon", "serve", "--config", config,
                 "--listen", exporter_addr],
                log_path=tmp_path / "exporter.log",
            )
        )  # fmt: skip
        realbin.wait_http(f"http://{exporter_addr}/readyz", 60, process=processes["exporter"])
        processes["alertmanager"] = stack.enter_context(
            realbin.running(
                [alertmanager, f"--config.file={files.alertmanager_yml}",
                 f"--storage.path={tmp_path / 'alertmanager'}",
                 f"--web.listen-address={alertmanager_addr}", "--cluster.listen-address="],
                log_path=tmp_path / "alertmanager.log",
            )
        )  # fmt: skip
        realbin.wait_http(
            f"http://{alertmanager_addr}/-/ready", 30, process=processes["alertmanager"]
        )
        processes["prometheus"] = stack.enter_context(
            realbin.running(
                [prometheus, f"--config.file={files.prometheus_yml}",
                 f"--storage.tsdb.path={tmp_path / 'prometheus'}",
                 f"--web.listen-address={prometheus_addr}"],
                log_path=tmp_path / "prometheus.log",
            )
        )  # fmt: skip
        realbin.wait_http(f"http://{prometheus_addr}/-/ready", 30, process=processes["prometheus"])
        yield Stack(
            exporter_url=f"http://{exporter_addr}",
            prometheus_url=f"http://{prometheus_addr}",
            alertmanager_url=f"http://{alertmanager_addr}",
            processes=processes,
            sink=sink,
        )


def _alert_labels(notification: Notification, status: str = "firing") -> list[dict[str, str]]:
    return [alert["labels"] for alert in notification.alerts(status)]


def _is(alertname: str, path: str, status: str = "firing") -> Callable[[Notification], bool]:
    def match(notification: Notification) -> bool:
        return notification.path == path and any(
            labels.get("alertname") == alertname for labels in _alert_labels(notification, status)
        )

    return match


def _report(name: str, seconds: float) -> None:
    """Print a time-to-page; with MODELMON_TIME_TO_PAGE_JSON, append it there too."""
    print(f"time-to-page {name}: {seconds:.2f} s")
    out = os.environ.get("MODELMON_TIME_TO_PAGE_JSON")
    if out:
        with open(out, "a") as handle:
            handle.write(json.dumps({"alert": name, "seconds": round(seconds, 3)}) + "\n")


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_drift_and_accuracy_drop_page_and_resolve(tmp_path: Path) -> None:
    traffic = Traffic(seed=2)
    with webhook_sink() as sink, running_stack(tmp_path, sink) as stack:
        stack.wait_query('up{job="modelmon"} == 1', 30)

        # 1. Stationary. A small first batch creates the counter series; once Prometheus
        # has scraped them, every later increase is seen by rate() and increase().
        stack.post("predictions", traffic.predictions(50))
        stack.wait_query('count(modelmon_column_bin_total{column="x2"}) >= 5', 30)
        # Then 20 batches over ~10 s, so the counters rise across scrapes.
        previous: list[dict[str, Any]] = []
        for _ in range(20):
            batch = traffic.predictions(200)
            stack.post("predictions", batch)
            if previous:
                stack.post("labels", traffic.labels(previous, "truth"))
            previous = batch
            time.sleep(0.5)
        stack.post("labels", traffic.labels(previous, "truth"))
        # The recording rules see the traffic ...
        stack.wait_query("model_version:modelmon_accuracy:ratio_rate1h", 30)
        stack.wait_query('model_version_column:modelmon_psi:increase1h{column="x2"}', 30)
        stack.wait_query('modelmon_window_events{window="1h"} >= 4000', 30)
        # ... and for longer than any `for` plus Alertmanager's timings nothing is even
        # pending, and nobody is notified.
        for _ in range(8):
            pending_or_firing = stack.query("ALERTS")
            assert pending_or_firing == [], stack.diagnose()
            time.sleep(1)
        assert sink.received() == [], stack.diagnose()

        # 2. Feature drift: 1000 records with x2 shifted, 20% of the 1h window.
        drifted = traffic.predictions(1000, x2_shift=X2_SHIFT)
        injected = time.monotonic()
        stack.post("predictions", drifted)
        page = sink.wait_for(_is("ModelmonFeatureDrift", "/webhook"), 60, stack.diagnose)
        _report("ModelmonFeatureDrift", page.at - injected)
        (labels,) = _alert_labels(page)
        assert labels["model"] == MODEL
        assert labels["version"] == VERSION
        assert labels["column"] == "x2"
        assert labels["window"] == "1h"
        assert labels["severity"] == "warning"
        sink.wait_for(_is("ModelmonFeatureDrift", "/chat"), 30, stack.diagnose)
        assert not [n for n in sink.received() if n.path == "/pager"], stack.diagnose()

        # The fleet PSI recording rule agrees with the exporter's own PSI of the window.
        # Prometheus misses only the 50 warm-up records and extrapolates increase() over
        # at most half a scrape interval: 2% is ample (measured: 0.1%).
        fleet = stack.query('model_version_column:modelmon_psi:increase1h{column="x2"}')
        exporter = stack.query('modelmon_drift_psi{column="x2", window="1h"}')
        print(f"fleet PSI {fleet[0]['value'][1]}, exporter PSI {exporter[0]['value'][1]}")
        assert float(fleet[0]["value"][1]) == pytest.approx(
            float(exporter[0]["value"][1]), rel=0.02
        ), (fleet, exporter)

        # 3. Accuracy drop: every drifted prediction gets the wrong label.
        injected = time.monotonic()
        stack.post("labels", traffic.labels(drifted, "wrong"))
        page = sink.wait_for(_is("ModelmonAccuracyDrop", "/pager"), 60, stack.diagnose)
        _report("ModelmonAccuracyDrop", page.at - injected)
        (labels,) = _alert_labels(page)
        assert (labels["model"], labels["version"], labels["severity"]) == (
            MODEL,
            VERSION,
            "critical",
        )
        sink.wait_for(_is("ModelmonAccuracyDrop", "/webhook"), 30, stack.diagnose)

        # 4. Recovery: 40000 stationary records dilute the drift to ~2% of the window;
        # 10000 right labels lift the accuracy back above the threshold.
        recovered = time.monotonic()
        recovery: list[dict[str, Any]] = []
        for _ in range(8):
            batch = traffic.predictions(5000)
            stack.post("predictions", batch)
            recovery.extend(batch)
        stack.post("labels", traffic.labels(recovery[:10000], "right"))
        sink.wait_for(_is("ModelmonFeatureDrift", "/webhook", "resolved"), 60, stack.diagnose)
        sink.wait_for(_is("ModelmonAccuracyDrop", "/pager", "resolved"), 60, stack.diagnose)
        _report("recovery (both resolved)", time.monotonic() - recovered)

        # Nothing but the two injected problems ever fired, and the retraining advisory
        # that an accuracy drop implies once its 6h `for` is shortened like every `for`
        # of this stack (it may or may not have reached the sink before the recovery).
        names = {
            labels["alertname"]
            for notification in sink.received()
            for status in ("firing", "resolved")
            for labels in _alert_labels(notification, status)
        }
        names.discard("ModelmonRetrainingAdvised")
        assert names == {"ModelmonFeatureDrift", "ModelmonAccuracyDrop"}, stack.diagnose()


def _post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = [{"labels": labels, "annotations": {"summary": "test"}} for labels in alerts]
    response = requests.post(f"{url}/api/v2/alerts", json=body, timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.timeout(60)
def test_inhibit_rules_in_a_real_alertmanager(tmp_path: Path) -> None:
    """The cases of alertmanager/tests/inhibit.yml against the shipped inhibit rules."""
    alertmanager = realbin.require_binary("alertmanager", "prometheus-alertmanager")
    bundle = _bundle_config()
    address = f"127.0.0.1:{realbin.free_port()}"
    with webhook_sink() as sink:
        config = bundle.derive_alertmanager(
            bundle.load_yaml(bundle.ALERTMANAGER_YML),
            webhook_base_url=sink.url,
            timings=bundle.RouteTimings("1s", "1s", "1h"),
        )
        path = bundle.dump_yaml(config, tmp_path / "alertmanager.yml")
        argv = [alertmanager, f"--config.file={path}", f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address={address}", "--cluster.listen-address="]  # fmt: skip
        with realbin.running(argv, log_path=tmp_path / "alertmanager.log") as process:
            url = f"http://{address}"
            realbin.wait_http(f"{url}/-/ready", 30, process=process)
            cases = yaml.safe_load((REPO / "alertmanager" / "tests" / "inhibit.yml").read_text())
            alerts: dict[str, dict[str, str]] = cases["alerts"]
            _post_alerts(url, list(alerts.values()))
            expected = set(cases["inhibited"])
            key_of = {json.dumps(labels, sort_keys=True): key for key, labels in alerts.items()}
            deadline = time.monotonic() + 20
            while True:
                listed = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
                inhibited = {
                    key_of[json.dumps(a["labels"], sort_keys=True)]
                    for a in listed
                    if a["status"]["inhibitedBy"]
                }
                if (len(listed) == len(alerts) and inhibited == expected) or (
                    time.monotonic() > deadline
                ):
                    break
                time.sleep(0.2)
            assert inhibited == expected, f"inhibited {inhibited}\n{process.log()}"
            # Inhibited alerts reach no receiver; the others do.
            time.sleep(3)  # group_wait 1s, group_interval 1s
            notified = {
                key_of[json.dumps(a["labels"], sort_keys=True)]
                for n in sink.received()
                for a in n.alerts()
            }
            assert notified == set(alerts) - expected


def _port_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.timeout(120)
def test_stack_script_runs_the_bundle_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """scripts/stack.sh: demo + Prometheus + Alertmanager up, rules evaluated, then
    SIGINT to its process group (what Ctrl-C in a terminal sends) stops all of them."""
    realbin.require_binary("prometheus")
    realbin.require_binary("alertmanager", "prometheus-alertmanager")
    ports = {name: realbin.free_port() for name in ("MODELMON", "PROMETHEUS", "ALERTMANAGER")}
    env = {**os.environ, **{f"{name}_PORT": str(port) for name, port in ports.items()}}
    env["PYTHON"] = sys.executable
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        script = subprocess.Popen(
            [str(REPO / "scripts" / "stack.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        prometheus = f"http://127.0.0.1:{ports['PROMETHEUS']}"
        realbin.wait_http(f"{prometheus}/-/ready", 60)
        realbin.wait_http(f"http://127.0.0.1:{ports['ALERTMANAGER']}/-/ready", 60)
        deadline = time.monotonic() + 60
        expr = 'up{job="modelmon"} == 1 and on () count(model_version:modelmon_events:rate5m) > 0'
        while True:
            result = requests.get(
                f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10
            ).json()["data"]["result"]
            if result:
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        os.killpg(script.pid, signal.SIGINT)
        assert script.wait(timeout=30) == 130, log.read_text()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
    text = log.read_text()
    assert "stack.sh: stopped" in text
    assert all(_port_closed(port) for port in ports.values()), text
    (work,) = [line.split()[3] for line in text.splitlines() if line.startswith("data and logs")]
    assert not Path(work).exists(), text
