"""The ``labels.store`` settings: a Redis URL, its password from a file or the
environment (never from the config text), TLS, timeout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelmon.config import ConfigError, config_from_dict

BASE = Path("/etc/modelmon")


def labels_config(**labels: Any) -> dict[str, Any]:
    model = {"name": "credit-risk", "reference": "r.profile.json", "labels": labels}
    return {"models": [model]}


def labels_of(**labels: Any) -> Any:
    return config_from_dict(labels_config(**labels), BASE).models[0].labels


def error_of(**labels: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(labels_config(**labels), BASE)
    return str(caught.value)


def test_defaults_keep_the_embedded_store() -> None:
    cfg = labels_of()
    assert (cfg.store, cfg.password_file, cfg.password_env, cfg.timeout) == (None, None, None, 1.0)


def test_a_redis_store_with_its_settings() -> None:
    cfg = labels_of(
        store="rediss://modelmon@redis.example:6380/2",
        password_file="secrets/redis",
        ca_file="/etc/ssl/redis-ca.pem",
        timeout="500ms",
    )
    assert cfg.store == "rediss://modelmon@redis.example:6380/2"
    assert cfg.password_file == BASE / "secrets/redis"  # relative to the config file
    assert cfg.ca_file == Path("/etc/ssl/redis-ca.pem")
    assert cfg.timeout == 0.5


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            {"store": "redis://:hunter2@redis:6379/0"},
            "models[0].labels.store: a password in the URL is refused; use "
            "labels.password_file or labels.password_env",
        ),
        ({"store": "redis://user:hunter2@redis"}, "a password in the URL is refused"),
        ({"store": "memcached://cache:11211"}, "models[0].labels.store: expected redis://"),
        ({"store": "redis://redis:70000/0"}, "port 70000 is not in 1-65535"),
        ({"store": "redis://redis:6379/zero"}, "expected redis://HOST:PORT/DB"),
        ({"password_env": "REDIS_PASSWORD"}, "models[0].labels.password_env: applies only"),
        (
            {"store": "redis://r", "password_env": "A", "password_file": "b"},
            "give password_file or password_env, not both",
        ),
        ({"store": "redis://r", "ca_file": "ca.pem"}, "ca_file: applies only to a rediss://"),
        ({"store": "redis://r", "timeout": 0}, "models[0].labels.timeout"),
        ({"store": "redis://r", "db": 3}, "models[0].labels.db: unknown key"),
    ],
)
def test_errors_name_the_key(labels: dict[str, Any], message: str) -> None:
    error = error_of(**labels)
    assert message in error
    assert "hunter2" not in error


def test_the_password_is_read_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    assert labels_of(store="redis://r", password_file=str(secret)).store_password() == "s3cret"
    monkeypatch.setenv("MM_TEST_REDIS_PASSWORD", "from-env")
    cfg = labels_of(store="redis://r", password_env="MM_TEST_REDIS_PASSWORD")
    assert cfg.store_password() == "from-env"
    monkeypatch.delenv("MM_TEST_REDIS_PASSWORD")
    with pytest.raises(ConfigError, match="MM_TEST_REDIS_PASSWORD is not set or empty"):
        cfg.store_password()
    with pytest.raises(ConfigError, match=r"labels\.password_file: cannot read"):
        labels_of(store="redis://r", password_file=str(tmp_path / "none")).store_password()
    assert labels_of(store="redis://r").store_password() is None
