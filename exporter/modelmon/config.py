"""The YAML configuration of ``modelmon serve``, validated at start-up.

Every error names its key path, e.g. ``models[0].drift.method: 'psi2' is not one of
auto, psi, ...``. Unknown keys are errors too, so a typo never silently does nothing.
The reference of every key is in README.md ("Configuration").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelmon.profile import TASKS
from modelmon.stats.drift import METHODS
from modelmon.values import parse_duration

DEFAULT_LISTEN = "0.0.0.0:9847"
MODEL_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")


class ConfigError(ValueError):
    """A configuration problem; the message starts with the key path."""


@dataclass(frozen=True)
class ColumnDrift:
    method: str = "auto"
    threshold: float | None = None


@dataclass(frozen=True)
class DriftConfig:
    method: str = "auto"
    threshold: float | None = None
    share: float = 0.5
    columns: dict[str, ColumnDrift] = field(default_factory=dict)
    #: Family-wise false-alarm level over the columns of one version and window.
    alpha: float = 0.01


@dataclass(frozen=True)
class LabelsConfig:
    ttl: float = 7 * 86400.0
    max_pending: int = 1_000_000
    #: ``redis://HOST:PORT/DB`` or ``rediss://`` (TLS): the join store shared by replicas;
    #: None: the embedded store (SQLite under state_dir, else in memory).
    store: str | None = None
    password_file: Path | None = None  # Redis password, read at start
    password_env: str | None = None  # or the environment variable that holds it
    ca_file: Path | None = None  # rediss: the CA bundle (default: the system's)
    timeout: float = 1.0  # Redis: seconds per call before ingest answers 503

    def store_password(self) -> str | None:
        """The Redis password from ``password_file`` or ``password_env`` (read now)."""
        if self.password_file is not None:
            try:
                text = self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"labels.password_file: cannot read {self.password_file}: {exc.strerror}"
                ) from None
            if not text:
                raise ConfigError(f"labels.password_file: {self.password_file} is empty")
            return text
        if self.password_env is not None:
            value = os.environ.get(self.password_env, "")
            if not value:
                raise ConfigError(
                    f"labels.password_env: the environment variable {self.password_env} "
                    "is not set or empty"
                )
            return value
        return None


@dataclass(frozen=True)
class Window:
    name: str  # as written in the config: the `window` label value
    seconds: float


@dataclass(frozen=True)
class ModelConfig:
    name: str
    reference: Path
    task: str | None = None
    version: str = "default"
    positive_class: str | None = None
    windows: tuple[Window, ...] = (Window("5m", 300.0), Window("1h", 3600.0), Window("1d", 86400.0))
    min_window_events: int = 100
    max_versions: int = 5
    drift: DriftConfig = DriftConfig()
    labels: LabelsConfig = LabelsConfig()


@dataclass(frozen=True)
class SourceConfig:
    type: str
    path: str
    model: str
    follow_symlinks: bool = False  # to files outside the pattern's directory


@dataclass(frozen=True)
class ProcessConfig:
    pid: int | None = None
    name: str | None = None
    cmdline: str | None = None


@dataclass(frozen=True)
class CollectorsConfig:
    process: ProcessConfig | None = None
    gpu: str = "auto"  # auto | true | false


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_records: int = 100_000
    max_values: int = 2_000_000  # JSON values per request (docs/security.md)
    max_category_length: int = 256  # categories, predicted classes and labels
    max_id_length: int = 256
    max_inflight: int = 4
    max_connections: int = 128
    request_timeout: float = 30.0  # per read
    body_timeout: float = 30.0  # the whole body


@dataclass(frozen=True)
class AuthConfig:
    token_file: Path | None = None
    protect_metrics: bool = False


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...]
    listen: str = DEFAULT_LISTEN
    state_dir: Path | None = None
    auth: AuthConfig = AuthConfig()
    tls: TlsConfig = TlsConfig()
    limits: Limits = Limits()
    sources: tuple[SourceConfig, ...] = ()
    collectors: CollectorsConfig = CollectorsConfig()
    refresh_interval: float = 2.0
    checkpoint_interval: float = 30.0


# --- validation helpers ---------------------------------------------------------------


def _mapping(value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise ConfigError(
                f"{path}.{key}: unknown key; expected one of {', '.join(sorted(allowed))}"
            )
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def _number(value: Any, path: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{path}: expected {kind}, got {value!r}")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{path}: expected at least {minimum:g}, got {value!r}")
    return float(value)


def _duration(value: Any, path: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
        raise ConfigError(f"{path}: expected a non-empty string, got {value!r}")
    return str(value)


def parse_listen(value: Any, path: str = "listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9847`` for IPv6) as a (host, port) pair."""
    text = _text(value, path)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{path}: expected HOST:PORT such as 0.0.0.0:9847, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


# --- sections ------------------------------------------------------------------------


def _alpha(raw: Any, path: str) -> float:
    alpha = _number(raw, path)
    if not 0 < alpha < 1:
        raise ConfigError(f"{path}: expected a level between 0 and 1 (e.g. 0.01), got {alpha}")
    return alpha


def _drift(raw: Any, path: str, default_alpha: float = DriftConfig.alpha) -> DriftConfig:
    d = _mapping(raw, path, {"method", "threshold", "share", "columns", "alpha"})
    alpha = default_alpha if d.get("alpha") is None else _alpha(d["alpha"], f"{path}.alpha")
    method = _choice(d.get("method", "auto"), f"{path}.method", METHODS)
    threshold = d.get("threshold")
    if threshold is not None:
        threshold = _number(threshold, f"{path}.threshold")
    share = _number(d.get("share", 0.5), f"{path}.share")
    if share > 1:
        raise ConfigError(f"{path}.share: expected a share between 0 and 1, got {share}")
    columns: dict[str, ColumnDrift] = {}
    for name, spec in _mapping(
        d.get("columns"), f"{path}.columns", set(d.get("columns") or {})
    ).items():
        cpath = f"{path}.columns.{name}"
        c = _mapping(spec, cpath, {"method", "threshold"})
        cthreshold = c.get("threshold")
        columns[str(name)] = ColumnDrift(
            _choice(c.get("method", method), f"{cpath}.method", METHODS),
            None if cthreshold is None else _number(cthreshold, f"{cpath}.threshold"),
        )
    return DriftConfig(method, threshold, share, columns, alpha)


def _windows(raw: Any, path: str) -> tuple[Window, ...]:
    if raw is None:
        return ModelConfig.windows
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: expected a non-empty list of durations such as [5m, 1h]")
    out = []
    for i, w in enumerate(raw):
        out.append(Window(_text(w, f"{path}[{i}]"), _duration(w, f"{path}[{i}]")))
    if len({w.name for w in out}) != len(out):
        raise ConfigError(f"{path}: duplicate windows")
    return tuple(out)


MODEL_KEYS = {
    "name",
    "task",
    "version",
    "reference",
    "positive_class",
    "windows",
    "min_window_events",
    "max_versions",
    "drift",
    "labels",
}


def _model(
    raw: Any, path: str, base: Path, default_alpha: float = DriftConfig.alpha
) -> ModelConfig:
    m = _mapping(raw, path, MODEL_KEYS)
    name = _text(m.get("name"), f"{path}.name")
    if not MODEL_NAME.match(name):
        raise ConfigError(f"{path}.name: {name!r} must match [a-zA-Z0-9_.-]+")
    if "reference" not in m:
        raise ConfigError(f"{path}.reference: required: the profile made by `modelmon profile`")
    reference = base / _text(m["reference"], f"{path}.reference")
    task = m.get("task")
    if task is not None:
        task = _choice(task, f"{path}.task", TASKS)
    labels = _mapping(m.get("labels"), f"{path}.labels", LABELS_KEYS)
    positive = m.get("positive_class")
    return ModelConfig(
        name=name,
        reference=reference,
        task=task,
        version=_text(m.get("version", "default"), f"{path}.version"),
        positive_class=None if positive is None else _text(positive, f"{path}.positive_class"),
        windows=_windows(m.get("windows"), f"{path}.windows"),
        min_window_events=int(
            _number(m.get("min_window_events", 100), f"{path}.min_window_events", integer=True)
        ),
        max_versions=int(
            _number(m.get("max_versions", 5), f"{path}.max_versions", minimum=1, integer=True)
        ),
        drift=_drift(m.get("drift"), f"{path}.drift", default_alpha),
        labels=_labels(labels, f"{path}.labels", base),
    )


LABELS_KEYS = {"ttl", "max_pending", "store", "password_file", "password_env", "ca_file", "timeout"}


def _labels(labels: dict[str, Any], path: str, base: Path) -> LabelsConfig:
    store = labels.get("store")
    if store is None:
        extra = sorted(
            k for k, v in labels.items() if v is not None and k not in ("ttl", "max_pending")
        )
        if extra:
            raise ConfigError(f"{path}.{extra[0]}: applies only with labels.store (Redis)")
    else:
        store = _store_url(_text(store, f"{path}.store"), f"{path}.store")
    if labels.get("password_file") is not None and labels.get("password_env") is not None:
        raise ConfigError(f"{path}.password_file: give password_file or password_env, not both")
    files = {
        key: base / _text(labels[key], f"{path}.{key}")
        for key in ("password_file", "ca_file")
        if labels.get(key) is not None
    }
    if "ca_file" in files and not str(store).startswith("rediss://"):
        raise ConfigError(f"{path}.ca_file: applies only to a rediss:// (TLS) store")
    env = labels.get("password_env")
    return LabelsConfig(
        ttl=_duration(labels.get("ttl", "7d"), f"{path}.ttl"),
        max_pending=int(
            _number(
                labels.get("max_pending", 1_000_000),
                f"{path}.max_pending",
                minimum=1,
                integer=True,
            )
        ),
        store=store,
        password_file=files.get("password_file"),
        password_env=None if env is None else _text(env, f"{path}.password_env"),
        ca_file=files.get("ca_file"),
        timeout=_duration(labels.get("timeout", 1.0), f"{path}.timeout"),
    )


_STORE_URL = re.compile(
    r"^(rediss?)://(?:([^:@/]*)@)?([^:@/]+|\[[0-9a-fA-F:]+\])(?::(\d+))?(?:/(\d+))?$"
)


def _store_url(url: str, path: str) -> str:
    """``redis[s]://[USER@]HOST[:PORT][/DB]``; a password in the URL is refused (it would
    sit in the config text, in logs and in ``ps``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"{path}: expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB, got {url!r:.100}"
        )
    if ":" in rest.partition("/")[0].rpartition("@")[0]:
        raise ConfigError(
            f"{path}: a password in the URL is refused; "
            "use labels.password_file or labels.password_env"
        )
    match = _STORE_URL.match(url)
    if match is None:
        raise ConfigError(f"{path}: expected {scheme}://HOST:PORT/DB, got {url!r:.100}")
    port = match.group(4)
    if port is not None and not 0 < int(port) < 65536:
        raise ConfigError(f"{path}: port {port} is not in 1-65535")
    return url


def _collectors(raw: Any, path: str) -> CollectorsConfig:
    c = _mapping(raw, path, {"process", "gpu"})
    process = None
    if c.get("process") is not None:
        p = _mapping(c["process"], f"{path}.process", {"pid", "name", "cmdline"})
        if not p:
            raise ConfigError(f"{path}.process: expected one of pid, name, cmdline")
        pid = p.get("pid")
        process = ProcessConfig(
            pid=None if pid is None else int(_number(pid, f"{path}.process.pid", integer=True)),
            name=None if p.get("name") is None else _text(p["name"], f"{path}.process.name"),
            cmdline=None
            if p.get("cmdline") is None
            else _text(p["cmdline"], f"{path}.process.cmdline"),
        )
    gpu = c.get("gpu", "auto")
    gpu = {True: "true", False: "false"}.get(gpu, gpu)
    return CollectorsConfig(process, _choice(gpu, f"{path}.gpu", ("auto", "true", "false")))


def _limits(raw: Any, path: str) -> Limits:
    defaults = Limits()
    fields = set(Limits.__dataclass_fields__)
    d = _mapping(raw, path, fields)
    values: dict[str, Any] = {}
    for key in fields:
        if key in d:
            if key in ("request_timeout", "body_timeout"):
                values[key] = _duration(d[key], f"{path}.{key}")
            else:
                values[key] = int(_number(d[key], f"{path}.{key}", minimum=1, integer=True))
    return Limits(**{**defaults.__dict__, **values})


def _sources(raw: Any, path: str, models: set[str], base: Path) -> tuple[SourceConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected a list of sources")
    out = []
    for i, s in enumerate(raw):
        spath = f"{path}[{i}]"
        src = _mapping(s, spath, {"type", "path", "model", "follow_symlinks"})
        _choice(src.get("type"), f"{spath}.type", ("jsonl",))
        model = _text(src.get("model"), f"{spath}.model")
        if model not in models:
            raise ConfigError(f"{spath}.model: {model!r} is not a configured model")
        follow = src.get("follow_symlinks", False)
        if not isinstance(follow, bool):
            raise ConfigError(f"{spath}.follow_symlinks: expected true or false, got {follow!r}")
        path = str(base / _text(src.get("path"), f"{spath}.path"))
        out.append(SourceConfig("jsonl", path, model, follow))
    return tuple(out)


TOP_KEYS = {
    "listen",
    "state_dir",
    "auth",
    "tls",
    "limits",
    "models",
    "sources",
    "collectors",
    "refresh_interval",
    "checkpoint_interval",
    "drift",
}


def config_from_dict(raw: Any, base: Path = Path(".")) -> Config:
    """Validate a parsed YAML document; relative paths are relative to ``base``."""
    top = _mapping(raw, "config", TOP_KEYS)
    models_raw = top.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise ConfigError("models: expected a non-empty list of models")
    drift = _mapping(top.get("drift"), "drift", {"alpha"})
    alpha = (
        DriftConfig.alpha if drift.get("alpha") is None else _alpha(drift["alpha"], "drift.alpha")
    )
    models = tuple(_model(m, f"models[{i}]", base, alpha) for i, m in enumerate(models_raw))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"models: duplicate model names {sorted({n for n in names if names.count(n) > 1})}"
        )
    listen = top.get("listen", DEFAULT_LISTEN)
    parse_listen(listen)
    auth = _mapping(top.get("auth"), "auth", {"token_file", "protect_metrics"})
    tls = _mapping(top.get("tls"), "tls", {"cert_file", "key_file"})
    if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
        raise ConfigError("tls: expected both cert_file and key_file")
    state_dir = top.get("state_dir")
    return Config(
        models=models,
        listen=str(listen),
        state_dir=None if state_dir is None else base / _text(state_dir, "state_dir"),
        auth=AuthConfig(
            token_file=None
            if auth.get("token_file") is None
            else base / _text(auth["token_file"], "auth.token_file"),
            protect_metrics=bool(auth.get("protect_metrics", False)),
        ),
        tls=TlsConfig(
            cert_file=None
            if not tls.get("cert_file")
            else base / _text(tls["cert_file"], "tls.cert_file"),
            key_file=None
            if not tls.get("key_file")
            else base / _text(tls["key_file"], "tls.key_file"),
        ),
        limits=_limits(top.get("limits"), "limits"),
        sources=_sources(top.get("sources"), "sources", set(names), base),
        collectors=_collectors(top.get("collectors"), "collectors"),
        refresh_interval=_duration(top.get("refresh_interval", 2.0), "refresh_interval"),
        checkpoint_interval=_duration(top.get("checkpoint_interval", 30.0), "checkpoint_interval"),
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{p}: {where}not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return config_from_dict(raw, p.parent)
