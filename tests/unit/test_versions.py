"""The version slot policy (modelmon.versions) and its use by ModelMonitor."""

from __future__ import annotations

from typing import Any

from modelmon.versions import IDLE_SECONDS, MIN_RECORDS, Seen, VersionSlots


def fill(slots: VersionSlots, live: dict[str, Seen], names: list[str], now: float = 0.0) -> None:
    for name in names:
        admitted, evicted = slots.place(name, 1, now, live)
        assert admitted, name
        assert evicted is None, name
        live[name] = Seen(now, 1)


def test_junk_versions_never_keep_out_the_configured_version() -> None:
    slots, live = VersionSlots("v1", max_versions=5), {}
    fill(slots, live, [f"junk{i}" for i in range(4)])
    assert slots.place("junk4", 1, 1.0, live) == (False, None)  # the 5th slot is v1's
    assert slots.place("v1", 1, 1.0, live) == (True, None)


def test_a_new_version_needs_min_records_to_evict_and_evicts_a_small_one() -> None:
    slots, live = VersionSlots("v1", max_versions=3), {"v1": Seen(0.0, 10_000)}
    fill(slots, live, ["junk0", "junk1"])
    refused = 0
    while True:  # a real v2 sends 10 records per request
        admitted, evicted = slots.place("v2", 10, 5.0, live)
        if admitted:
            break
        refused += 10
    assert refused + 10 == MIN_RECORDS  # its claim reached MIN_RECORDS
    assert evicted == "junk0"  # the least recently seen small version


def test_an_established_active_version_is_not_evicted_until_idle() -> None:
    slots, live = VersionSlots("v1", max_versions=2), {"v2": Seen(100.0, MIN_RECORDS)}
    assert slots.place("v3", 10 * MIN_RECORDS, 200.0, live) == (False, None)
    later = 100.0 + IDLE_SECONDS
    assert slots.place("v3", 1, later, live) == (True, "v2")


def test_claims_are_bounded() -> None:
    slots, live = VersionSlots("v1", max_versions=2), {"v2": Seen(0.0, MIN_RECORDS)}
    for i in range(1000):
        slots.place(f"junk{i}", 1, 1.0, live)
    assert len(slots.claims) == 64


def test_restored_versions_make_room_for_the_configured_one() -> None:
    live = {f"old{i}": Seen(float(i), MIN_RECORDS) for i in range(3)}
    slots = VersionSlots("v1", max_versions=3)
    assert slots.place("v1", 1, 10.0, live) == (True, "old0")


def test_monitor_keeps_the_configured_version_against_five_junk_versions(
    make_profile: Any, fake_clock: Any
) -> None:
    from conftest import reference_rows
    from modelmon.config import config_from_dict
    from modelmon.model import ModelMonitor

    built = make_profile(reference_rows(), prediction="prediction", score="score")
    config = config_from_dict(
        {"models": [{"name": "m", "version": "v3", "reference": str(built.path)}]}
    )
    monitor = ModelMonitor(config.models[0], built.profile, clock=fake_clock)
    junk = [{"version": f"junk{i}", "features": {"age": 30}} for i in range(5)]
    first = monitor.ingest(junk)
    assert (first.accepted, first.rejected) == (4, 1)  # max_versions 5: one slot is v3's
    again = monitor.ingest([{"features": {"age": 30}}, {"version": "v3", "features": {}}])
    assert (again.accepted, again.rejected) == (2, 0)
    assert "v3" in monitor.versions
    # A real v2 with enough records takes the slot of a junk version.
    real = monitor.ingest([{"version": "v2", "features": {"age": 30}}] * MIN_RECORDS)
    assert real.accepted == MIN_RECORDS
    assert "v2" in monitor.versions
    assert len(monitor.versions) == 5
