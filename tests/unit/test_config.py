"""The YAML configuration (DESIGN.md section 4): defaults, and errors that name their key path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmon.config import ConfigError, config_from_dict, load_config, parse_listen


def model(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "credit-risk", "reference": "credit-risk.profile.json"}
    base.update(overrides)
    return base


def config(*models: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"models": list(models) or [model()], **top}


def error_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw, Path("/etc/modelmon"))
    return str(caught.value)


def test_the_documented_example_loads(tmp_path: Path) -> None:
    text = """
listen: 0.0.0.0:9847
state_dir: /var/lib/modelmon
auth:
  token_file: /etc/modelmon/token
models:
  - name: credit-risk
    task: binary_classification
    version: v3
    reference: credit-risk.profile.json
    positive_class: "1"
    windows: [5m, 1h, 1d]
    min_window_events: 100
    drift:
      method: auto
      threshold: null
      share: 0.5
      columns:
        income: {method: psi, threshold: 0.25}
    labels:
      ttl: 7d
      max_pending: 1000000
sources:
  - type: jsonl
    path: /var/log/model/predictions*.jsonl
    model: credit-risk
collectors:
  process: {name: "python", cmdline: "serve.py"}
  gpu: auto
"""
    path = tmp_path / "modelmon.yaml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    m = cfg.models[0]
    assert cfg.listen == "0.0.0.0:9847"
    assert m.reference == tmp_path / "credit-risk.profile.json"  # relative to the file
    assert [(w.name, w.seconds) for w in m.windows] == [("5m", 300), ("1h", 3600), ("1d", 86400)]
    assert m.drift.columns["income"].method == "psi"
    assert m.drift.columns["income"].threshold == 0.25
    assert m.labels.ttl == 7 * 86400
    assert m.positive_class == "1"
    assert cfg.collectors.gpu == "auto"
    assert cfg.sources[0].model == "credit-risk"


def test_the_limits_of_issue_22_load_with_their_defaults() -> None:
    limits = config_from_dict(config()).limits
    assert (limits.max_values, limits.max_id_length, limits.max_connections) == (
        2_000_000,
        256,
        128,
    )
    assert limits.body_timeout == 30.0
    raw = config(
        limits={"max_values": 10, "body_timeout": "2m", "max_connections": 3},
        sources=[{"type": "jsonl", "path": "x", "model": "credit-risk", "follow_symlinks": True}],
    )
    cfg = config_from_dict(raw)
    assert (cfg.limits.max_values, cfg.limits.body_timeout, cfg.limits.max_connections) == (
        10,
        120.0,
        3,
    )
    assert cfg.sources[0].follow_symlinks is True
    assert config_from_dict(config(sources=raw["sources"][:0])).sources == ()


def test_defaults() -> None:
    cfg = config_from_dict(config())
    m = cfg.models[0]
    assert cfg.listen == "0.0.0.0:9847"
    assert [w.name for w in m.windows] == ["5m", "1h", "1d"]
    assert m.min_window_events == 100
    assert (m.drift.method, m.drift.threshold, m.drift.share) == ("auto", None, 0.5)


@pytest.mark.parametrize(
    ("raw", "path", "detail"),
    [
        (config(model(windos=["5m"])), "models[0].windos", "unknown key"),
        (config(model(drift={"method": "psi2"})), "models[0].drift.method", "'psi2' is not one of"),
        (
            config(model(drift={"columns": {"income": {"method": "kl"}}})),
            "models[0].drift.columns.income.method",
            "'kl' is not one of",
        ),
        (
            config(model(), model(name="b", drift={"mehtod": "psi"})),
            "models[1].drift.mehtod",
            "unknown key",
        ),
        (config(model(windows=["5m", "1hour"])), "models[0].windows[1]", "1hour"),
        (config(model(windows=["5m", "soon"])), "models[0].windows[1]", "soon"),
        (config(model(labels={"ttl": "forever"})), "models[0].labels.ttl", "forever"),
        (config({"name": "credit-risk"}), "models[0].reference", "required"),
        (config(model(name="credit risk")), "models[0].name", "credit risk"),
        (config(model(task="ranking")), "models[0].task", "'ranking' is not one of"),
        (config(model(min_window_events="many")), "models[0].min_window_events", "many"),
        (config(model(drift={"share": 1.5})), "models[0].drift.share", "1.5"),
        (config(model(), model()), "models", "credit-risk"),
        (config(listen="localhost"), "listen", "HOST:PORT"),
        (config(listen="0.0.0.0:99999"), "listen", "99999"),
        (config(collectors={"gpu": "maybe"}), "collectors.gpu", "'maybe' is not one of"),
        (
            config(sources=[{"type": "jsonl", "path": "x.jsonl", "model": "other"}]),
            "sources[0].model",
            "other",
        ),
        (
            config(sources=[{"type": "kafka", "path": "x", "model": "credit-risk"}]),
            "sources[0].type",
            "kafka",
        ),
        ({"models": []}, "models", "non-empty list"),
        ({}, "models", "non-empty list"),
        (config(limits={"max_values": 0}), "limits.max_values", "at least 1"),
        (config(limits={"body_timeout": "soon"}), "limits.body_timeout", "soon"),
        (config(limits={"max_conections": 5}), "limits.max_conections", "unknown key"),
        (
            config(
                sources=[
                    {"type": "jsonl", "path": "x", "model": "credit-risk", "follow_symlinks": 1}
                ]
            ),
            "sources[0].follow_symlinks",
            "true or false",
        ),
    ],
)
def test_errors_name_the_key_path(raw: Any, path: str, detail: str) -> None:
    message = error_of(raw)
    assert message.startswith(f"{path}:") or message.startswith(f"{path} "), message
    assert detail in message


def test_unknown_top_level_key_is_named() -> None:
    message = error_of(config(listne="0.0.0.0:1"))
    assert "listne" in message
    assert "unknown key" in message


def test_bad_method_lists_the_valid_choices() -> None:
    message = error_of(config(model(drift={"method": "psi2"})))
    assert re.search(r"auto, psi, ks, wasserstein, jensen_shannon, chi2", message), message


def test_load_config_reports_invalid_yaml_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  - name: a\n    reference: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+: not valid YAML"):
        load_config(path)


def test_load_config_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_errors_from_a_file_name_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "modelmon.yaml"
    path.write_text(yaml.safe_dump(config(model(drift={"method": "psi2"}))), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"models\[0\]\.drift\.method: 'psi2' is not one of"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:9847", ("0.0.0.0", 9847)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:80", ("::1", 80)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected
