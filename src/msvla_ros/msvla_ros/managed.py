"""Managed (lifecycle) nodes: configure loads what the node needs and can fail with a reason,
activate starts output, deactivate stops it, cleanup releases what configure made.

With `autostart` (the default) the node configures and activates itself at start-up, so a graph
runs without a lifecycle manager; with autostart false it waits unconfigured for
`ros2 lifecycle set <node> configure` / `activate` from a manager.
"""
from __future__ import annotations

from rclpy.lifecycle import LifecyclePublisher, LifecycleState, Node as LifecycleNode, TransitionCallbackReturn

from msvla_core.params import ParamSpec

from .parameters import declare_parameters
from .qos_events import PolledQosEvents

AUTOSTART = ParamSpec("autostart", True, "Configure and activate at start-up. False: stay unconfigured "
                      "until a lifecycle manager (or ros2 lifecycle set) configures and activates the node.")


class ManagedNode(PolledQosEvents, LifecycleNode):
    """Subclasses implement `configure(values)` (raise with a reason to refuse) and may extend
    `on_activate` / `on_deactivate`; `self.active` gates their callbacks."""

    def __init__(self, name: str, **node_kwargs):
        super().__init__(name, **node_kwargs)
        self.values = declare_parameters(self, self.parameter_specs())
        self.active = False
        self.configure_error = ""
        self._made: dict[str, set] = {}

    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        raise NotImplementedError

    def configure(self, values: dict) -> None:
        raise NotImplementedError

    def autostart(self) -> str:
        """Configure and activate if the autostart parameter says so; returns why that failed,
        or "" (also when autostart is off)."""
        if not self.values["autostart"]:
            self.get_logger().info("autostart is false: waiting unconfigured for a lifecycle manager")
            return ""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return f"configure failed: {self.configure_error}"
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            return "activate failed"
        return ""

    def _entities(self) -> dict[str, set]:
        return {"publisher": set(self.publishers), "subscription": set(self.subscriptions),
                "timer": set(self.timers), "service": set(self.services), "client": set(self.clients)}

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        before = self._entities()
        try:
            self.configure(self.values)
        except Exception as exc:  # a wrong checkpoint or limit: refuse the transition, stay alive
            self.configure_error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            self._destroy({kind: now - before[kind] for kind, now in self._entities().items()})
            return TransitionCallbackReturn.FAILURE
        self.configure_error = ""
        self._made = {kind: now - before[kind] for kind, now in self._entities().items()}
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self.active = result == TransitionCallbackReturn.SUCCESS
        if self.active:
            self.get_logger().info("active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.get_logger().info("inactive: no output until activated again")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy(self._made)
        self._made = {}
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    def _destroy(self, made: dict[str, set]) -> None:
        for kind, entities in made.items():
            for entity in entities:
                if isinstance(entity, LifecyclePublisher):
                    self.destroy_lifecycle_publisher(entity)  # also leaves the managed entities
                else:
                    getattr(self, f"destroy_{kind}")(entity)
