"""Bearer-token auth and TLS, over real sockets.

``auth.token_file`` guards ingest (and ``/metrics`` with ``auth.protect_metrics``);
``/healthz`` and ``/readyz`` stay open for probes. TLS uses a self-signed certificate
made for the test by the ``openssl`` command line, or the ``cryptography`` package where
``openssl`` is missing; with neither the TLS tests skip (fail under ``CI=true``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import realbin
import requests
import yaml

from modelmon.app import Exporter
from modelmon.config import config_from_dict

pytestmark = pytest.mark.integration

MODEL = "credit-risk"
TOKEN = "s3cr3t-Token_with.symbols~42"
RECORD = json.dumps({"id": "a1", "features": {"age": 41, "country": "DE"}, "prediction": 1})
LABEL = json.dumps({"id": "a1", "label": 1})


def token_file(directory: Path, text: str = TOKEN + "\n") -> Path:
    path = directory / "token"
    path.write_text(text, encoding="utf-8")  # a trailing newline, as `echo` writes it
    path.chmod(0o600)
    return path


def ingest(base: str, kind: str = "predictions", **kwargs: Any) -> requests.Response:
    body = RECORD if kind == "predictions" else LABEL
    return requests.post(
        f"{base}/v1/models/{MODEL}/{kind}",
        data=body,
        headers={"Content-Type": "application/json", **kwargs.pop("headers", {})},
        timeout=10,
        **kwargs,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def counted(samples: Any) -> float:
    """Every record the exporter counted, accepted or rejected, and every label."""
    names = ("modelmon_events_total", "modelmon_rejected_records_total", "modelmon_labels_total")
    return sum(sum(samples.series(name).values()) for name in names)


# --- auth ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(module_exporters: Any) -> Any:
    """One token-guarded exporter for the module (counters accumulate: use deltas)."""
    return module_exporters.start(auth={"token_file": str(token_file(module_exporters.directory))})


@pytest.mark.parametrize("kind", ["predictions", "labels"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer(TOKEN[:-1]),
        bearer(TOKEN + "x"),
        bearer(""),
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Token {TOKEN}"},
    ],
    ids=["none", "wrong", "prefix", "longer", "empty", "no-scheme", "basic", "other-scheme"],
)
def test_ingest_without_the_right_token_is_401_and_counts_nothing(
    guarded: Any, scrape: Any, kind: str, headers: dict[str, str]
) -> None:
    before = counted(scrape(guarded.url))
    response = ingest(guarded.url, kind, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert ingest(guarded.url, "predictions", headers=bearer(TOKEN)).status_code == 200
    after = counted(scrape(guarded.url))
    assert after - before == 1  # only the authorized record, and no rejection


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_ingest_with_the_token_is_accepted(guarded: Any, scheme: str) -> None:
    response = ingest(guarded.url, headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    labels = ingest(guarded.url, "labels", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert labels.status_code == 200, labels.text


def test_unauthorized_large_body_still_gets_its_401(guarded: Any) -> None:
    """The server answers before reading the body; the client must still see the 401."""
    body = json.dumps([json.loads(RECORD)] * 50_000).encode()  # ~4 MB
    for _ in range(3):
        response = requests.post(
            f"{guarded.url}/v1/models/{MODEL}/predictions", data=body, timeout=30
        )
        assert response.status_code == 401
    assert ingest(guarded.url, headers=bearer(TOKEN)).status_code == 200


def test_metrics_and_probes_are_open_unless_metrics_are_protected(guarded: Any) -> None:
    for path in ("/metrics", "/healthz", "/readyz"):
        assert requests.get(guarded.url + path, timeout=10).status_code == 200


def test_protect_metrics_guards_metrics_but_not_the_probes(
    exporter_factory: Any, tmp_path: Path
) -> None:
    running = exporter_factory(
        auth={"token_file": str(token_file(tmp_path)), "protect_metrics": True}
    )
    assert requests.get(running.url + "/metrics", timeout=10).status_code == 401
    wrong = requests.get(running.url + "/metrics", headers=bearer("nope"), timeout=10)
    assert wrong.status_code == 401
    ok = requests.get(running.url + "/metrics", headers=bearer(TOKEN), timeout=10)
    assert ok.status_code == 200
    assert "modelmon_events_total" in ok.text or "modelmon_build_info" in ok.text
    for path in ("/healthz", "/readyz"):
        assert requests.get(running.url + path, timeout=10).status_code == 200


def test_ingest_is_open_without_a_token_file(exporter: str) -> None:
    assert ingest(exporter).status_code == 200


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_an_empty_token_file_stops_start_up_naming_the_key(
    make_profile: Any, tmp_path: Path, content: str
) -> None:
    from conftest import default_config, reference_rows

    built = make_profile(reference_rows(), "credit-risk", prediction="prediction", score="score")
    raw = default_config(built.path)
    raw["auth"] = {"token_file": str(token_file(tmp_path, content))}
    with pytest.raises(ValueError, match=r"auth\.token_file"):
        Exporter(config_from_dict(raw, tmp_path))


# --- TLS -------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (openssl CLI, else ``cryptography``)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    openssl = shutil.which("openssl")
    if openssl is not None:
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cert, key
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        message = "neither the openssl command nor the cryptography package is available"
        if realbin.in_ci():
            pytest.fail(f"{message} (CI=true: a missing real component fails the test)")
        pytest.skip(message)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_server(module_exporters: Any) -> tuple[str, Path, Any]:
    directory = module_exporters.directory
    cert, key = self_signed(directory)
    running = module_exporters.start(
        tls={"cert_file": str(cert), "key_file": str(key)},
        auth={"token_file": str(token_file(directory))},
        limits={"request_timeout": "1s"},
    )
    https = running.url.replace("http://", "https://")
    return https, cert, running


def test_tls_serves_https_with_a_verifiable_certificate(
    tls_server: tuple[str, Path, Any],
) -> None:
    https, cert, _ = tls_server
    assert requests.get(https + "/healthz", verify=str(cert), timeout=10).status_code == 200
    response = ingest(https, headers=bearer(TOKEN), verify=str(cert))
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert ingest(https, verify=str(cert)).status_code == 401  # auth still applies
    metrics = requests.get(https + "/metrics", verify=str(cert), timeout=10)
    assert "modelmon_events_total" in metrics.text


def test_tls_refuses_an_untrusted_client_view(tls_server: tuple[str, Path, Any]) -> None:
    """A client that does not trust the self-signed certificate fails the handshake."""
    https, _, _ = tls_server
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https + "/healthz", timeout=10)


def test_plain_http_to_the_tls_port_gets_no_http_answer(
    tls_server: tuple[str, Path, Any],
) -> None:
    https, cert, running = tls_server
    with pytest.raises(requests.ConnectionError):
        requests.get(running.url + "/healthz", timeout=10)
    port = int(https.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"POST /v1/models/{MODEL}/predictions HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert not data.startswith(b"HTTP/")
    assert requests.get(https + "/healthz", verify=str(cert), timeout=10).status_code == 200


def test_a_client_that_never_handshakes_does_not_block_others(
    tls_server: tuple[str, Path, Any],
) -> None:
    https, cert, _ = tls_server
    port = int(https.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        started = time.monotonic()
        assert requests.get(https + "/healthz", verify=str(cert), timeout=10).status_code == 200
        assert time.monotonic() - started < 0.5  # the handshake is not in the accept loop
        for sock in idle:  # and the silent ones are dropped after request_timeout (1 s)
            sock.settimeout(5)
            started = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
            assert time.monotonic() - started < 2.5
    finally:
        for sock in idle:
            sock.close()


# --- start-up errors -------------------------------------------------------------------


def serve_once(
    tmp_path: Path, reference: Path, tls: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    config = {
        "listen": f"127.0.0.1:{realbin.free_port()}",
        "collectors": {"gpu": False},
        "tls": tls,
        "models": [{"name": MODEL, "reference": str(reference)}],
    }
    path = tmp_path / "tls.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "modelmon", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("problem", ["missing-cert", "mismatched-key"])
def test_a_bad_certificate_stops_start_up_naming_the_tls_key(
    make_profile: Any, tmp_path: Path, problem: str
) -> None:
    """DESIGN.md section 4: a config error stops start-up with a message naming the key."""
    from conftest import reference_rows

    built = make_profile(reference_rows(), "credit-risk", prediction="prediction", score="score")
    cert, key = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = self_signed(other)
    tls = (
        {"cert_file": str(tmp_path / "missing.crt"), "key_file": str(key)}
        if problem == "missing-cert"
        else {"cert_file": str(cert), "key_file": str(other_key)}
    )
    result = serve_once(tmp_path, built.path, tls)
    assert result.returncode == 2, result.stderr
    assert "tls." in result.stderr, result.stderr
    assert "cannot listen" not in result.stderr, result.stderr


# --- start-up checks of issue 22 ---------------------------------------------------------


def _config_with_token(make_profile: Any, directory: Path, token: Path) -> Any:
    from conftest import default_config, reference_rows

    built = make_profile(reference_rows(), "credit-risk", prediction="prediction", score="score")
    raw = default_config(built.path)
    raw["auth"] = {"token_file": str(token)}
    return config_from_dict(raw, directory)


@pytest.mark.parametrize("text", ["pässwörd\n", "tab\there\n", "a b\n"], ids=repr)
def test_a_token_no_client_could_send_stops_start_up(
    make_profile: Any, tmp_path: Path, text: str
) -> None:
    """A token outside printable ASCII could never match an Authorization header."""
    config = _config_with_token(make_profile, tmp_path, token_file(tmp_path, text))
    with pytest.raises(ValueError, match=r"auth\.token_file: .*printable ASCII"):
        Exporter(config)


def test_a_world_readable_token_file_is_a_loud_warning(
    make_profile: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = token_file(tmp_path)
    config = _config_with_token(make_profile, tmp_path, path)
    with caplog.at_level(logging.WARNING, logger="modelmon"):
        Exporter(config).store.close()
    assert not [r for r in caplog.records if "token_file" in r.getMessage()]
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="modelmon"):
        Exporter(config).store.close()
    [warning] = [r for r in caplog.records if "token_file" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "chmod 600" in warning.getMessage()


def test_the_start_up_log_names_https_under_tls(
    exporter_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = self_signed(tmp_path)
    with caplog.at_level(logging.INFO, logger="modelmon"):
        exporter_factory(tls={"cert_file": str(cert), "key_file": str(key)})
    [line] = [r.getMessage() for r in caplog.records if "serving on" in r.getMessage()]
    assert "https://127.0.0.1:" in line
