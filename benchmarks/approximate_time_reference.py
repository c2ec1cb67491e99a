"""Reimplementation of the ROS message_filters ApproximateTime policy, for comparison only.

Written for benchmarks/sync.py from the published description of the algorithm (ROS wiki,
message_filters/ApproximateTime): it is not the ROS code and not used by MSVLA at runtime.

The policy keeps one queue per topic and emits a set (one message per topic) once it can prove
that no later message can form a set with a smaller time span (latest minus earliest stamp):

* A candidate is formed from the heads of all queues. Its latest message fixes the pivot: every
  set the search still considers contains the pivot message or a later message of that topic.
* The search repeatedly moves the earliest head to a side list ("past") and compares the new head
  set with the candidate; a tighter one replaces the candidate (the pivot stays).
* The candidate is emitted when the pivot topic's head would have to move, or when the span
  [candidate start, newest head] already exceeds the candidate's own span.
* If a queue runs empty before that, optional per-topic lower bounds on the time between messages
  stand in for the not-yet-arrived heads ("virtual" heads), which may still prove optimality.
* Each message is used at most once; messages passed over by an emitted set are discarded.

Queue overflow (queue plus past longer than queue_size) drops the topic's oldest message, cancels
the running search, and keeps that topic from becoming the next pivot until a set forms without it.
Streams are assumed to arrive in stamp order per topic, as in ROS.
"""
from __future__ import annotations

from collections import Counter, deque
from typing import Any


class ApproximateTimeReference:
    def __init__(self, names: list[str], queue_size: int, max_interval_ns: int | None = None,
                 age_penalty: float = 0.0, inter_message_lower_bound_ns: dict[str, int] | None = None):
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError(f"need at least two unique topic names, got {names}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.names = list(names)
        self._index = {n: i for i, n in enumerate(names)}
        self.queue_size = queue_size
        self.max_interval_ns = max_interval_ns
        self.age_penalty = age_penalty
        bounds = inter_message_lower_bound_ns or {}
        self._bound = [int(bounds.get(n, 0)) for n in names]
        self._queues: list[deque[tuple[int, Any]]] = [deque() for _ in names]
        self._past: list[list[tuple[int, Any]]] = [[] for _ in names]
        self._had_overflow = [False] * len(names)
        self._non_empty = 0
        self._pivot: int | None = None
        self._pivot_time = 0
        self._candidate: list[tuple[int, Any]] | None = None
        self._cand_start = self._cand_end = 0
        self._out: list[dict[str, tuple[int, Any]]] = []
        self.dropped: Counter[str] = Counter()

    def add(self, name: str, stamp_ns: int, item: Any) -> list[dict[str, tuple[int, Any]]]:
        """Queue one message; returns the sets emitted because of it, each {topic: (stamp, item)}."""
        i = self._index[name]
        self._out = []
        queue = self._queues[i]
        queue.append((stamp_ns, item))
        if len(queue) == 1:
            self._non_empty += 1
            if self._non_empty == len(self.names):
                self._process()
        if len(queue) + len(self._past[i]) > self.queue_size:
            self._non_empty = 0
            for j in range(len(self.names)):
                self._recover(j, len(self._past[j]))
            queue.popleft()
            self.dropped[f"{name}:queue_overflow"] += 1
            self._had_overflow[i] = True
            if self._pivot is not None:
                self._candidate, self._pivot = None, None
                self._process()
        return self._out

    # --- queue moves --------------------------------------------------------------------------
    def _delete_front(self, i: int) -> None:
        self._queues[i].popleft()  # too far from the other heads to be in any set
        self.dropped[f"{self.names[i]}:no_candidate"] += 1
        if not self._queues[i]:
            self._non_empty -= 1

    def _move_front_to_past(self, i: int) -> None:
        self._past[i].append(self._queues[i].popleft())
        if not self._queues[i]:
            self._non_empty -= 1

    def _recover(self, i: int, count: int) -> None:
        """Put the last `count` past messages of topic i back at the head of its queue."""
        past, queue = self._past[i], self._queues[i]
        for _ in range(count):
            queue.appendleft(past.pop())
        if queue:
            self._non_empty += 1

    def _make_candidate(self) -> None:
        self._candidate = [q[0] for q in self._queues]
        for i, past in enumerate(self._past):
            self.dropped[f"{self.names[i]}:passed_over"] += len(past)
            past.clear()

    def _publish(self) -> None:
        self._out.append({n: m for n, m in zip(self.names, self._candidate)})
        self._candidate, self._pivot = None, None
        self._non_empty = 0
        for i in range(len(self.names)):
            # the candidate's message is the oldest one left for each topic: restore, then drop it
            self._recover(i, len(self._past[i]))
            self._queues[i].popleft()
            if not self._queues[i]:
                self._non_empty -= 1

    # --- search -------------------------------------------------------------------------------
    def _heads(self, virtual: bool) -> list[int]:
        if not virtual:
            return [q[0][0] for q in self._queues]
        return [q[0][0] if q else self._past[i][-1][0] + self._bound[i] for i, q in enumerate(self._queues)]

    @staticmethod
    def _bounds(times: list[int]) -> tuple[int, int, int, int]:
        """(start index, start time, end index, end time): earliest head, latest head."""
        start = min(range(len(times)), key=lambda k: (times[k], k))
        end = max(range(len(times)), key=lambda k: (times[k], k))
        return start, times[start], end, times[end]

    def _not_better(self, start_t: int, end_t: int) -> bool:
        return (end_t - self._cand_end) * (1 + self.age_penalty) >= start_t - self._cand_start

    def _process(self) -> None:
        n = len(self.names)
        while self._non_empty == n:
            start_i, start_t, end_i, end_t = self._bounds(self._heads(virtual=False))
            for j in range(n):
                if j != end_i:
                    self._had_overflow[j] = False  # nothing it dropped could beat these heads
            if self._pivot is None:
                too_wide = self.max_interval_ns is not None and end_t - start_t > self.max_interval_ns
                if too_wide or self._had_overflow[end_i]:
                    self._delete_front(start_i)
                    continue
                self._make_candidate()
                self._cand_start, self._cand_end = start_t, end_t
                self._pivot, self._pivot_time = end_i, end_t
                self._move_front_to_past(start_i)
            else:
                if not self._not_better(start_t, end_t):
                    self._make_candidate()
                    self._cand_start, self._cand_end = start_t, end_t
                self._move_front_to_past(start_i)

            if start_i == self._pivot:
                self._publish()  # every set still possible was examined
            elif self._not_better(self._pivot_time, end_t):
                self._publish()  # any later set spans [pivot time, end_t], already too wide
            elif self._non_empty < n:
                self._virtual_search()

    def _virtual_search(self) -> None:
        """Use the inter-message lower bounds as optimistic heads for the empty queues."""
        n = len(self.names)
        moves = [0] * n
        while True:
            start_i, start_t, _, end_t = self._bounds(self._heads(virtual=True))
            if self._not_better(self._pivot_time, end_t):
                self._publish()  # restores the virtual moves as it recovers the past lists
                return
            if not self._not_better(start_t, end_t) or not self._queues[start_i]:
                # an optimistic future set could still win (or the earliest head is only virtual):
                # undo the moves and wait for real messages
                self._non_empty = 0
                for j in range(n):
                    self._recover(j, moves[j])
                return
            self._move_front_to_past(start_i)
            moves[start_i] += 1
