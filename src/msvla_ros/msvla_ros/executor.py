"""A single-threaded executor that keeps its wait set while the nodes' entities stay the same and
calls ready callbacks directly.

rclpy's SingleThreadedExecutor rebuilds its wait set in Python before every wait (filtering,
entering and adding every subscription, timer, service and waitable of every node), hands out one
callback per spin_once, and wraps each in a Task whose guard-condition triggers wake the next wait
at once, so one message costs about two rebuilds. The graph's processes wake hundreds of times a
second (a 100 Hz IMU, 50 Hz joint states, a 50 Hz shield control loop) and a composed process
holds seven nodes with parameter services each: the executor, not the nodes, was the largest
single cost (benchmarks/executor.py measures both).

`DirectExecutor` re-adds the cached handles to one reused wait set, waits, and runs every ready
timer, subscription and service in that cycle by calling it. What it does not run directly
(coroutine callbacks, clients, waitables, tasks) goes through rclpy's own handlers, so any node
still works; only the hot paths are short-cut. Single-threaded: callback groups do not apply.
The ready callbacks of a cycle are served node by node in the order the nodes were added (rclpy
keeps its nodes in a set, whose order is arbitrary).
"""
from __future__ import annotations

import inspect
from contextlib import ExitStack
from threading import RLock

from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.subscription import Subscription
from rclpy.utilities import timeout_sec_to_nsec


def _listing(nodes, guards) -> tuple:
    """Every entity of the nodes, as a tuple compared by identity: equal while nothing changed."""
    return tuple((node, tuple(node.timers), tuple(node.subscriptions), tuple(node.services),
                  tuple(node.clients), tuple(node.guards), tuple(node.waitables)) for node in nodes) + (guards,)


class _Entities:
    """The entities of the executor's nodes at one moment, with what a cycle needs of them."""

    def __init__(self, listing: tuple):
        self.listing = listing
        rows, guards = listing[:-1], listing[-1]
        self.timers = [t for row in rows for t in row[1]]
        self.subscriptions = [s for row in rows for s in row[2]]
        self.services = [s for row in rows for s in row[3]]
        self.clients = [c for row in rows for c in row[4]]
        self.guards = [g for row in rows for g in row[5]] + list(guards)
        self.waitables = [(w, row[0]) for row in rows for w in row[6]]
        self.direct = {id(e): not inspect.iscoroutinefunction(e.callback)
                       for e in self.timers + self.subscriptions + self.services}
        self.node_of = {id(e): row[0] for row in rows for group in row[1:] for e in group}
        self.wait_set = None
        # Entered handles are destroyed only when released (rclpy's Destroyable), so the wait set
        # never points at a freed entity, even one destroyed by another thread during a wait. The
        # set is released at the next rebuild, which the destruction itself causes.
        self.hold = ExitStack()

    def enter(self, context) -> None:
        """Hold every handle and make the wait set; raises InvalidHandle (after releasing what
        it held) if an entity was destroyed since it was listed."""
        try:
            for entity in self.subscriptions + self.timers + self.services + self.clients + self.guards:
                self.hold.enter_context(entity.handle)
            for waitable, _ in self.waitables:
                self.hold.enter_context(waitable)
            self.hold.enter_context(context.handle)
            self._make_wait_set(context)
        except BaseException:
            self.hold.close()
            raise
        # handle -> entity per kind, in the order rclpy serves them (timers, subscriptions, ...)
        self.by_pointer = {kind: {e.handle.pointer: e for e in group} for kind, group in (
            ("timer", self.timers), ("subscription", self.subscriptions), ("service", self.services),
            ("client", self.clients), ("guard_condition", self.guards))}
        self.handles = [(self.wait_set.add_subscription, [e.handle for e in self.subscriptions]),
                        (self.wait_set.add_timer, [e.handle for e in self.timers]),
                        (self.wait_set.add_service, [e.handle for e in self.services]),
                        (self.wait_set.add_client, [e.handle for e in self.clients]),
                        (self.wait_set.add_guard_condition, [e.handle for e in self.guards])]

    def _make_wait_set(self, context):
        events = sum(w.get_num_entities().num_events for w, _ in self.waitables)
        counts = [len(self.subscriptions), len(self.guards), len(self.timers), len(self.clients),
                  len(self.services), events]
        for w, _ in self.waitables:
            n = w.get_num_entities()
            counts[0] += n.num_subscriptions
            counts[1] += n.num_guard_conditions
            counts[2] += n.num_timers
            counts[3] += n.num_clients
            counts[4] += n.num_services
        self.wait_set = _rclpy.WaitSet(*counts, context.handle)


class DirectExecutor(Executor):
    """Single-threaded; `spin_once` runs every callback that is ready after one wait, node by
    node in the order the nodes were added."""

    def __init__(self, *, context=None):
        super().__init__(context=context)
        self._order: list = []  # the nodes in the order they were added
        self._entities: _Entities | None = None
        self._maybe_changed = True
        # Held by the spinning thread for a whole cycle, wait included: shutdown() from another
        # thread releases the handles only once the wait it interrupted has returned.
        self._cycle = RLock()

    def add_node(self, node) -> bool:
        added = super().add_node(node)
        if node not in self._order:
            self._order.append(node)
        return added

    def remove_node(self, node) -> None:
        super().remove_node(node)
        if node in self._order:
            self._order.remove(node)

    def _current(self) -> _Entities:
        """The cached entities, listed again after the executor's guard condition fired: rclpy
        triggers it whenever a node of the executor creates or destroys an entity, and on
        add_node / remove_node."""
        if self._entities is not None and not self._maybe_changed:
            return self._entities
        present = set(self.get_nodes())
        listing = _listing([n for n in self._order if n in present], (self._guard, self._sigint_gc))
        if self._entities is None or listing != self._entities.listing:
            self._release()
            fresh = _Entities(listing)
            fresh.enter(self._context)
            self._entities = fresh
        self._maybe_changed = False
        return self._entities

    def _release(self) -> None:
        if self._entities is not None:
            self._entities.hold.close()
            self._entities = None

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        done = super().shutdown(timeout_sec)  # wakes a waiting spin_once
        with self._cycle:
            self._release()
        return done

    def spin_once(self, timeout_sec: float | None = None) -> None:
        with self._cycle:
            if self._is_shutdown or not self._context.ok():
                return
            self._spin_once(timeout_sec)

    def _spin_once(self, timeout_sec: float | None) -> None:
        self._run_tasks()
        try:
            entities = self._current()
        except InvalidHandle:
            return  # an entity was destroyed while being listed: the next cycle lists again
        wait_set = entities.wait_set
        wait_set.clear_entities()
        try:
            for add, handles in entities.handles:
                for handle in handles:
                    add(handle)
            for waitable, _ in entities.waitables:
                waitable.add_to_wait_set(wait_set)
        except InvalidHandle:
            self._maybe_changed = True  # destroyed by the last callbacks: list the entities again
            return
        wait_set.wait(timeout_sec_to_nsec(timeout_sec))
        if self._is_shutdown or not self._context.ok():
            return
        self._dispatch(entities, wait_set)

    def _dispatch(self, entities: _Entities, wait_set) -> None:
        ready = {kind: [by_pointer[p] for p in wait_set.get_ready_entities(kind) if p in by_pointer]
                 for kind, by_pointer in entities.by_pointer.items()}
        ready_waitables = [(w, node) for w, node in entities.waitables if w.is_ready(wait_set)]
        for kind, run, take in (("timer", self._run_timer, self._take_timer),
                                ("subscription", self._run_subscription, self._take_subscription),
                                ("service", self._run_service, self._take_service)):
            for entity in ready[kind]:
                if entities.direct[id(entity)]:
                    run(entity)
                else:
                    self._via_rclpy(entity, entities.node_of[id(entity)], take)
        for cli in ready["client"]:
            self._via_rclpy(cli, entities.node_of[id(cli)], self._take_client)
        for gc in ready["guard_condition"]:
            if gc is self._guard:
                self._maybe_changed = True
            elif gc.callback is not None:
                gc._executor_triggered = True
                self._via_rclpy(gc, entities.node_of.get(id(gc)), self._take_guard_condition)
        for waitable, node in ready_waitables:
            self._via_rclpy(waitable, node, self._take_waitable)

    def _run_timer(self, tmr) -> None:
        try:
            with tmr.handle:
                if not tmr.handle.is_timer_ready():  # cancelled since the wait
                    return
                tmr.handle.call_timer()
        except InvalidHandle:
            return
        tmr.callback()

    def _run_subscription(self, sub) -> None:
        try:
            with sub.handle:
                taken = sub.handle.take_message(sub.msg_type, sub.raw)
        except InvalidHandle:
            return
        if taken is None:
            return
        if sub._callback_type is Subscription.CallbackType.MessageOnly:
            sub.callback(taken[0])
        else:
            sub.callback(*taken)

    def _run_service(self, srv) -> None:
        try:
            with srv.handle:
                request, header = srv.handle.service_take_request(srv.srv_type.Request)
        except InvalidHandle:
            return
        if header is None:
            return
        srv.send_response(srv.callback(request, srv.srv_type.Response()), header)

    def _via_rclpy(self, entity, node, take) -> None:
        """rclpy's own handler (a Task), run now."""
        handler = self._make_handler(entity, node, take)
        handler()
        if handler.exception() is not None:
            raise handler.exception()

    def _run_tasks(self) -> None:
        """Tasks rclpy's handlers or create_task left unfinished (coroutines awaiting futures)."""
        with self._tasks_lock:
            if not self._tasks:
                return
            tasks = list(self._tasks)
        for task, _, _ in tasks:
            if not task.executing() and not task.done():
                task()
                if task.exception() is not None:
                    raise task.exception()
        with self._tasks_lock:
            self._tasks = [t for t in self._tasks if not t[0].done()]

    def spin_once_until_future_complete(self, future, timeout_sec: float | None = None) -> None:
        future.add_done_callback(lambda _: self.wake())
        self.spin_once(timeout_sec)
