"""CollectorSet: failure isolation, success and duration per collector, logging once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from modelmon.catalogue import spec
from modelmon.collectors.health import CollectorSet


class Fixed:
    """A collector exporting one gauge ``name`` with ``value``."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value, self.calls = name, value, 0

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        yield GaugeMetricFamily(self.name, "test gauge", value=self.value)


class HalfWay:
    """Yields one family, then raises: none of its families may reach the scrape."""

    def __init__(self, message: str = "disk on fire") -> None:
        self.message = message

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("half_way_first", "test gauge", value=1.0)
        raise RuntimeError(self.message)


class NotIterable:
    def collect(self) -> None:  # a broken collector: returns nothing iterable
        return None


class StepClock:
    """Returns the given instants one after the other."""

    def __init__(self, *instants: float) -> None:
        self.instants = list(instants)

    def __call__(self) -> float:
        return self.instants.pop(0)


def scrape(collector_set: CollectorSet) -> dict[tuple[str, str], float]:
    """(sample name, collector label or '') -> value, through a real exposition round trip."""
    registry = CollectorRegistry()
    registry.register(collector_set)
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels.get("collector", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_raising_collector_reports_zero_and_the_others_export() -> None:
    collector_set = CollectorSet(
        {"a": Fixed("a_value", 3.0), "bad": HalfWay(), "c": Fixed("c_value", 4.0)}
    )
    series = scrape(collector_set)
    assert series[("a_value", "")] == 3.0
    assert series[("c_value", "")] == 4.0
    assert ("half_way_first", "") not in series
    assert series[("modelmon_collector_success", "a")] == 1.0
    assert series[("modelmon_collector_success", "bad")] == 0.0
    assert series[("modelmon_collector_success", "c")] == 1.0
    assert {k for k in series if k[0] == "modelmon_collector_duration_seconds"} == {
        ("modelmon_collector_duration_seconds", name) for name in ("a", "bad", "c")
    }


def test_a_collector_returning_garbage_reports_zero() -> None:
    series = scrape(CollectorSet({"broken": NotIterable(), "ok": Fixed("ok_value", 1.0)}))  # type: ignore[dict-item]
    assert series[("modelmon_collector_success", "broken")] == 0.0
    assert series[("ok_value", "")] == 1.0


def test_durations_are_the_clock_differences_around_each_collector() -> None:
    clock = StepClock(10.0, 10.25, 20.0, 21.5)
    series = scrape(CollectorSet({"a": Fixed("a_value", 0.0), "b": HalfWay()}, clock=clock))
    assert series[("modelmon_collector_duration_seconds", "a")] == 0.25
    assert series[("modelmon_collector_duration_seconds", "b")] == 1.5


def test_real_clock_durations_are_small_and_non_negative() -> None:
    series = scrape(CollectorSet({"a": Fixed("a_value", 0.0)}))
    assert 0.0 <= series[("modelmon_collector_duration_seconds", "a")] < 1.0


def test_health_families_carry_catalogue_help() -> None:
    registry = CollectorRegistry()
    registry.register(CollectorSet({"a": Fixed("a_value", 0.0)}))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    for name in ("modelmon_collector_success", "modelmon_collector_duration_seconds"):
        assert families[name].documentation == spec(name).help
        assert families[name].type == "gauge"


def test_registering_does_not_run_the_collectors() -> None:
    fixed = Fixed("a_value", 0.0)
    collector_set = CollectorSet({"a": fixed})
    assert collector_set.describe() == []
    CollectorRegistry(auto_describe=True).register(collector_set)
    assert fixed.calls == 0


def test_no_collectors_still_serves() -> None:
    assert scrape(CollectorSet({})) == {}


def test_a_failure_is_logged_once_per_distinct_message(caplog: pytest.LogCaptureFixture) -> None:
    failing = HalfWay("first problem")
    logger = logging.getLogger("test.health")
    collector_set = CollectorSet({"bad": failing}, logger=logger)
    for _ in range(3):
        scrape(collector_set)
    failing.message = "second problem"
    for _ in range(2):
        scrape(collector_set)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "bad" in errors[0]
    assert "RuntimeError: first problem" in errors[0]
    assert "RuntimeError: second problem" in errors[1]


def test_recovery_is_logged_and_a_relapse_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.health")
    state = {"fail": True}

    class Flaky:
        def collect(self) -> Iterator[Metric]:
            if state["fail"]:
                raise OSError("gone")
            yield GaugeMetricFamily("flaky_value", "test gauge", value=1.0)

    collector_set = CollectorSet({"flaky": Flaky()}, logger=logging.getLogger("test.health"))
    scrape(collector_set)
    state["fail"] = False
    series = scrape(collector_set)
    assert series[("modelmon_collector_success", "flaky")] == 1.0
    state["fail"] = True
    series = scrape(collector_set)
    assert series[("modelmon_collector_success", "flaky")] == 0.0
    levels = [(r.levelno, "recovered" in r.getMessage()) for r in caplog.records]
    assert levels == [(logging.ERROR, False), (logging.INFO, True), (logging.ERROR, False)]
