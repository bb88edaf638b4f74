"""Which versions of a model get one of its ``max_versions`` slots.

Every version has its own counters and windows, so versions per model are capped
(DESIGN.md section 7). A sender chooses the version of each record; the policy keeps a
few junk versions from shutting out real ones:

1. The configured version (the model's ``version``) always has its slot: it is never
   refused and never evicted.
2. The other versions share the other ``max_versions - 1`` slots, first come, first
   served while one is free.
3. When they are full, a new version's records are refused (``too_many_versions``) and
   counted as its claim. Once its claim reaches ``MIN_RECORDS`` records it takes the
   slot of the least recently seen other version that either had no record for
   ``IDLE_SECONDS`` or has itself seen fewer than ``MIN_RECORDS`` records. A version
   with fewer records than that cannot evict another, and a version that has seen that
   many stays while it keeps sending.

Claims are kept for the ``MAX_CLAIMS`` most recent refused versions.

>>> slots = VersionSlots("v1", max_versions=3)
>>> live = {}
>>> for name in ("junk0", "junk1"):  # two junk versions take the free slots
...     admitted, _ = slots.place(name, 1, now=0.0, live=live)
...     live[name] = Seen(last_seen=0.0, records=1)
>>> slots.place("junk2", 1, now=1.0, live=live)  # full, and one record cannot evict
(False, None)
>>> slots.place("v1", 1, now=1.0, live=live)  # the configured version always fits
(True, None)
>>> slots.place("v2", 150, now=2.0, live=live)  # a real new version evicts a junk one
(True, 'junk0')
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

#: Records a version must have seen before it can evict another version, and before
#: it is protected from eviction while active.
MIN_RECORDS = 100
#: A version with no record for this long may be evicted to make room for a new one.
IDLE_SECONDS = 600.0
#: Refused versions whose claims are remembered.
MAX_CLAIMS = 64


class VersionUse(Protocol):
    """What the policy reads of a live version."""

    @property
    def last_seen(self) -> float: ...

    @property
    def records(self) -> int: ...


@dataclass
class Seen:
    """A plain :class:`VersionUse` (for tests and examples)."""

    last_seen: float
    records: int


class VersionSlots:
    """The slot policy of one model (see the module doc)."""

    def __init__(
        self,
        configured: str,
        max_versions: int,
        *,
        min_records: int = MIN_RECORDS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.configured = configured
        self.max_versions = max_versions
        self.min_records = min_records
        self.idle_seconds = idle_seconds
        self.claims: OrderedDict[str, int] = OrderedDict()

    def place(
        self, version: str, records: int, now: float, live: Mapping[str, VersionUse]
    ) -> tuple[bool, str | None]:
        """Whether ``version`` (not live yet), arriving with ``records`` records, gets a
        slot, and which live version it evicts for it (None when a slot was free)."""
        others = [name for name in live if name != self.configured]
        if version == self.configured:  # restored checkpoints may have filled the slots
            full = others and len(live) >= self.max_versions
            return True, min(others, key=lambda n: live[n].last_seen) if full else None
        if len(others) < self.max_versions - 1:
            self.claims.pop(version, None)
            return True, None
        claim = self.claims.pop(version, 0) + records
        if claim >= self.min_records:
            victim = self._evictable(others, now, live)
            if victim is not None:
                return True, victim
        self.claims[version] = claim
        while len(self.claims) > MAX_CLAIMS:
            self.claims.popitem(last=False)
        return False, None

    def _evictable(
        self, others: list[str], now: float, live: Mapping[str, VersionUse]
    ) -> str | None:
        candidates = [
            name
            for name in others
            if now - live[name].last_seen >= self.idle_seconds
            or live[name].records < self.min_records
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda name: live[name].last_seen)
