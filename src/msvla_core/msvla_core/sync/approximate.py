"""Approximate-time synchronisation of stamped streams, driven by a reference stream.

Time is taken only from the stamps themselves (and, optionally, from times the caller passes in),
never from a wall clock, so replaying a bag gives exactly the sets the live fusion node formed.

For every reference item, each other stream contributes the item nearest in time within `slop`
(or, for windowed streams, every item in the window before the reference stamp). A set is emitted
once no better match can arrive: every stream has an item at or after the reference stamp, or the
stream has been silent for longer than its timeout, in which case it is reported missing.

Accounting: every accepted item leaves the synchroniser either inside an emitted set or counted in
`dropped` under "<stream>:<reason>" (queue_overflow, unused, or no_match_<stream> for a reference
whose required stream has no match); items still queued are neither. Items rejected by `add`
(future_stamp, duplicate, out_of_order) are counted the same way. Future stamps can only be
recognised when the caller passes `receive_ns`.
"""
from __future__ import annotations

import bisect
from collections import Counter, deque
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any


@dataclass(frozen=True)
class StreamSpec:
    name: str
    queue_size: int = 30
    timeout_ns: int = 500_000_000  # silent longer than this -> reported missing
    window_ns: int = 0  # > 0: contribute all items in (ref - window, ref] instead of one
    required: bool = False  # a set without this stream is dropped instead of emitted

    def __post_init__(self):
        if self.queue_size < 1:
            raise ValueError(f"stream {self.name}: queue_size must be >= 1, got {self.queue_size}")
        if self.timeout_ns <= 0 or self.window_ns < 0:
            raise ValueError(f"stream {self.name}: timeout_ns must be > 0 and window_ns >= 0")


@dataclass
class SyncedSet:
    reference_stamp_ns: int
    items: dict[str, tuple[int, Any]] = field(default_factory=dict)  # single-item streams
    windows: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    def age_s(self, name: str) -> float:
        """Reference stamp minus the stream item's stamp, in seconds."""
        return (self.reference_stamp_ns - self.items[name][0]) * 1e-9


class ApproximateSynchronizer:
    def __init__(self, reference: StreamSpec, others: list[StreamSpec], slop_ns: int,
                 future_tolerance_ns: int = 100_000_000):
        names = [reference.name] + [s.name for s in others]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        if slop_ns < 0:
            raise ValueError(f"slop_ns must be >= 0, got {slop_ns}")
        if future_tolerance_ns < 0:
            raise ValueError(f"future_tolerance_ns must be >= 0, got {future_tolerance_ns}")
        if reference.window_ns or reference.required:
            raise ValueError(f"reference stream {reference.name}: window_ns and required do not apply "
                             "to the stream that decides the output rate")
        self.reference = reference
        self.specs = {s.name: s for s in [reference, *others]}
        self.slop_ns = slop_ns
        self.future_tolerance_ns = future_tolerance_ns
        self._others = list(others)
        self._queues: dict[str, deque[tuple[int, Any]]] = {n: deque() for n in names}
        # stamps of queued items that already went out in a set: evicting them is not a drop
        self._used: dict[str, set[int]] = {n: set() for n in names}
        self._latest: dict[str, int | None] = {n: None for n in names}
        self._watermark: int | None = None
        self._first_ns: int | None = None
        self.dropped: Counter[str] = Counter()
        self.last_drop: str | None = None  # reason the last `add` dropped its item, if it did
        self.emitted = 0

    @property
    def stream_names(self) -> list[str]:
        return list(self.specs)

    def add(self, name: str, stamp_ns: int, item: Any, receive_ns: int | None = None) -> list[SyncedSet]:
        """Queue one item; returns the sets that became complete (oldest first)."""
        if name not in self.specs:
            raise KeyError(f"unknown stream {name!r}; known: {self.stream_names}")
        latest = self._latest[name]
        self.last_drop = None
        if receive_ns is not None and stamp_ns > receive_ns + self.future_tolerance_ns:
            return self._drop(name, "future_stamp")
        if latest is not None and stamp_ns == latest:
            return self._drop(name, "duplicate")
        if latest is not None and stamp_ns < latest:
            return self._drop(name, "out_of_order")
        queue = self._queues[name]
        queue.append((stamp_ns, item))
        self._latest[name] = stamp_ns
        if len(queue) > self.specs[name].queue_size and self._evict(name):
            self.dropped[f"{name}:queue_overflow"] += 1
        if self._watermark is None:
            self._watermark = self._first_ns = stamp_ns
        self._watermark = max(self._watermark, stamp_ns)
        return self._drain()

    def _drop(self, name: str, reason: str) -> list:
        self.dropped[f"{name}:{reason}"] += 1
        self.last_drop = reason
        return []

    def _evict(self, name: str) -> bool:
        """Remove the oldest queued item of `name`; True if it is a drop (no emitted set used it)."""
        stamp, _ = self._queues[name].popleft()
        used = self._used[name]
        if stamp in used:
            used.remove(stamp)
            return False
        return True

    def advance(self, time_ns: int) -> list[SyncedSet]:
        """Move the notion of 'now' forward without data (e.g. a live node's timer), so silent
        streams time out and waiting reference items are emitted with those streams missing."""
        if self._watermark is None:
            return []  # nothing queued yet
        self._watermark = max(self._watermark, time_ns)
        return self._drain()

    def _drain(self) -> list[SyncedSet]:
        out = []
        ref_queue = self._queues[self.reference.name]
        while ref_queue:
            ref_stamp, ref_item = ref_queue[0]
            result = self._try_match(ref_stamp)
            if result is None:
                break  # wait for more data on some stream
            ref_queue.popleft()
            if result is False:
                continue
            result.items[self.reference.name] = (ref_stamp, ref_item)
            out.append(result)
            self.emitted += 1
        return out

    def _try_match(self, ref_stamp: int) -> SyncedSet | None | bool:
        """A complete set, None to wait, or False when the reference item must be dropped."""
        for spec in self._others:
            latest = self._latest[spec.name]
            # a stream never heard from counts its silence from the first item of any stream
            heard = latest if latest is not None else self._first_ns
            silent = self._watermark - heard > spec.timeout_ns
            if not silent and (latest is None or latest < ref_stamp) \
                    and self._watermark - ref_stamp <= spec.timeout_ns:
                return None  # a closer item (or the rest of the window) may still arrive
        synced = SyncedSet(reference_stamp_ns=ref_stamp)
        missing = []
        for spec in self._others:
            queue = self._queues[spec.name]
            if spec.window_ns:
                window = [(s, x) for s, x in queue if ref_stamp - spec.window_ns < s <= ref_stamp]
                if window:
                    synced.windows[spec.name] = window
                else:
                    missing.append(spec.name)
                continue
            best = self._nearest(queue, ref_stamp)
            if best is None:
                missing.append(spec.name)
            else:
                synced.items[spec.name] = best
        required = [n for n in missing if self.specs[n].required]
        if required:
            self.dropped[f"{self.reference.name}:no_match_{required[0]}"] += 1
            self._discard_before(ref_stamp)  # later references cannot use these items either
            return False
        for name, (stamp, _) in synced.items.items():
            self._used[name].add(stamp)
        for name, window in synced.windows.items():
            self._used[name].update(s for s, _ in window)
        synced.missing = tuple(missing)
        self._discard_before(ref_stamp)
        return synced

    def _nearest(self, queue: deque, ref_stamp: int) -> tuple[int, Any] | None:
        i = bisect.bisect_left(queue, ref_stamp, key=itemgetter(0))
        best = None
        for j in (i - 1, i):  # the earlier neighbour wins a tie
            if 0 <= j < len(queue) and (best is None or abs(queue[j][0] - ref_stamp) < abs(best[0] - ref_stamp)):
                best = queue[j]
        if best is None or abs(best[0] - ref_stamp) > self.slop_ns:
            return None
        return best

    def _discard_before(self, ref_stamp: int) -> None:
        """Drop items no later reference can use (later references have later stamps)."""
        for spec in self._others:
            queue = self._queues[spec.name]
            unused = 0
            if spec.window_ns:
                while queue and queue[0][0] <= ref_stamp - spec.window_ns:
                    unused += self._evict(spec.name)
            else:
                # the newest item at or before ref_stamp may still be nearest to the next reference
                while len(queue) > 1 and queue[1][0] <= ref_stamp:
                    unused += self._evict(spec.name)
            if unused:
                self.dropped[f"{spec.name}:unused"] += unused

    def counters(self) -> dict[str, int]:
        return {"emitted": self.emitted, **dict(sorted(self.dropped.items()))}
