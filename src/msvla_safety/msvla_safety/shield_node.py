"""What both shield nodes share: parameters, heartbeats, emergency stop, reset, status and diagnostics.

Heartbeat timeouts run on a steady-clock timer, so neither a stalled nor a jumping ROS clock can keep
the shield from noticing a dead input; message stamps are judged against the ROS clock.

Interfaces (absolute names, one shield per robot):
  /msvla/fused (FusedObservation)        which sensors are alive (heartbeat per required modality)
  /msvla/vla/heartbeat (Heartbeat)       the VLA node is alive and its model healthy
  /msvla/safety/emergency_stop (Bool)    true latches the emergency stop
  /msvla/safety/trigger_emergency_stop (std_srvs/Trigger)  latches it too
  /msvla/safety/reset (std_srvs/Trigger) clears the latch, only while every input is healthy
  /msvla/safety/status (SafetyStatus)    on every change and at status_rate
  /msvla/safety/enable_actuation (std_srvs/SetBool)  sets actuation_enabled (false: dry run)

A managed node: configure builds the shield from its limits (a wrong limit refuses the transition
with the reason), activate starts the watchdog, status and commands, deactivate stops all output.
A deactivated vehicle shield sends nothing, so the vehicle interface's own command timeout must
bring the car to a stop.
"""
from __future__ import annotations

import time

from rclpy.clock import Clock, ClockType
from rclpy.parameter import Parameter
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from msvla_core.params import ParamSpec
from msvla_core.safety import ShieldState
from msvla_core.safety.params import WATCHDOG_PARAMS
from msvla_msgs.msg import FusedObservation, Heartbeat, SafetyStatus
from msvla_ros.diagnostics import ERROR, OK, WARN, Diagnostics, FlowStats, age_ms
from msvla_ros.managed import AUTOSTART, ManagedNode
from msvla_ros.parameters import undeclared_overrides
from msvla_ros.qos import COMMAND, FEATURE, HEARTBEAT, LATCHED

_LEVEL = {ShieldState.OK: OK, ShieldState.INTERVENING: WARN, ShieldState.SAFE_STOP: ERROR,
          ShieldState.EMERGENCY: ERROR}


def steady_ns() -> int:
    return time.monotonic_ns()


class ShieldNode(ManagedNode):
    """Base of the grasp and vehicle shield nodes. Subclasses set `self.shield` (an object with
    `supervisor`, `tick(now_ns, steady_ns)`, `reset(steady_ns)`, `passed`, `rejected` and
    `last_interventions`) in `make_shield` and add their own inputs and outputs in `configure_io`."""

    mode = ""
    limit_params: tuple[ParamSpec, ...] = ()  # the subclass's limits; the watchdog's are shared

    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return list(cls.limit_params) + WATCHDOG_PARAMS + [AUTOSTART]

    def __init__(self, **node_kwargs):
        super().__init__("safety_shield", **node_kwargs)
        unknown = undeclared_overrides(self)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} (a typo would leave a default limit in force)")
        self.withheld = 0  # commands a dry run did not publish
        self.flow = FlowStats()

    def configure(self, values: dict) -> None:
        self.shield = self.make_shield(values)  # raises ValueError naming a wrong limit
        self.supervisor = self.shield.supervisor
        self.required_modalities = set(values["required_modalities"])
        self._published_state: tuple | None = None
        self._last_status_ns = 0
        self._status_period_ns = int(1e9 / values["status_rate"])
        self.status_pub = self.create_lifecycle_publisher(SafetyStatus, "/msvla/safety/status", COMMAND)
        self.create_subscription(FusedObservation, "/msvla/fused", self.on_fused, FEATURE)
        self.create_subscription(Heartbeat, "/msvla/vla/heartbeat", self.on_vla_heartbeat, HEARTBEAT)
        self.create_subscription(Bool, "/msvla/safety/emergency_stop", self.on_emergency_topic, LATCHED)
        self.create_service(Trigger, "/msvla/safety/trigger_emergency_stop", self.on_emergency_service)
        self.create_service(Trigger, "/msvla/safety/reset", self.on_reset)
        self.create_service(SetBool, "/msvla/safety/enable_actuation", self.on_enable_actuation)
        self._actuating = values["actuation_enabled"]
        if not self._actuating:
            self.get_logger().warning("dry run: actuation_enabled is false, so nothing is published to the "
                                      "robot; enable with the parameter or /msvla/safety/enable_actuation")
        self.control_timer = self.create_timer(1.0 / values["control_rate"], self.on_control,
                                               clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.diagnostics = Diagnostics(self, f"safety/{self.mode}", self._report)
        self.configure_io(values)
        self.get_logger().info(f"{self.mode} shield limits: {self.shield.limits}; watched inputs: "
                               f"{sorted(self.supervisor.limits.heartbeat_timeouts_s)}")

    def make_shield(self, values: dict):
        raise NotImplementedError

    def configure_io(self, values: dict) -> None:
        """The mode's own subscriptions and its command publisher (a lifecycle publisher)."""
        raise NotImplementedError

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # ---- inputs ----------------------------------------------------------------------------
    def on_fused(self, msg: FusedObservation) -> None:
        self.flow.received("fused")
        now = steady_ns()
        for modality in msg.modalities:
            if modality in self.required_modalities:
                self.supervisor.heartbeat(f"sensor/{modality}", now)

    def on_vla_heartbeat(self, msg: Heartbeat) -> None:
        self.flow.received("vla_heartbeat")
        self.supervisor.heartbeat("vla", steady_ns(), ok=msg.level != Heartbeat.LEVEL_ERROR,
                                  message=msg.message, model_id=msg.model_id)

    def on_emergency_topic(self, msg: Bool) -> None:
        if msg.data:
            self.emergency_stop("emergency stop topic /msvla/safety/emergency_stop is true")

    def on_emergency_service(self, request, response):
        self.emergency_stop("emergency stop service called")
        response.success, response.message = True, "emergency stop latched"
        return response

    def emergency_stop(self, reason: str) -> None:
        first = self.supervisor.state != ShieldState.EMERGENCY
        self.supervisor.emergency_stop(reason)
        if first:
            self.get_logger().error(f"EMERGENCY STOP: {reason}")
        self.on_control()

    def on_reset(self, request, response):
        response.success, response.message = self.shield.reset(steady_ns())
        if response.success:  # rclpy ties one severity to each call site
            self.get_logger().info(response.message)
        else:
            self.get_logger().warn(response.message)
        self.publish_status(force=True)
        return response

    def on_enable_actuation(self, request, response):
        result = self.set_parameters([Parameter("actuation_enabled", value=bool(request.data))])[0]
        response.success = result.successful
        response.message = (f"actuation {'enabled' if request.data else 'disabled (dry run)'}"
                            if result.successful else result.reason)
        return response

    def publish_command(self, publisher, msg, started: float | None = None) -> bool:
        """Publish a command that passed the shield, unless this is a dry run (then it is counted).
        `started`: perf_counter() when the proposal it answers arrived (for the hop time)."""
        enabled = self.get_parameter("actuation_enabled").value
        if enabled != self._actuating:
            self._actuating = enabled
            self.get_logger().warning("actuation enabled: commands now reach the robot" if enabled
                                      else "actuation disabled: dry run, commands are withheld")
        if not enabled:
            self.withheld += 1
            return False
        publisher.publish(msg)
        self.flow.published(None if started is None else (time.perf_counter() - started) * 1e3,
                            age_ms(self, msg.header.stamp))
        return True

    # ---- periodic ----------------------------------------------------------------------------
    def on_control(self) -> None:
        if not self.active:
            return
        before = self.supervisor.state
        self.on_tick(self.shield.tick(self.now_ns(), steady_ns()))
        after = self.supervisor.state
        if after != before and after >= ShieldState.SAFE_STOP:
            self.get_logger().error(f"{after.name}: " + "; ".join(f"[{c}] {r}" for c, r in self.supervisor.active()))
        elif after != before:
            self.get_logger().info(f"{before.name} -> {after.name}")
        self.publish_status()

    def on_tick(self, result) -> None:
        """What a mode does with the shield's tick result (the vehicle publishes its command)."""

    def interventions(self) -> list[tuple[str, str]]:
        """Everything active now: the latched/safe-state reasons and the last decision's."""
        active = self.supervisor.active()
        seen = {code for code, _ in active}
        return active + [(c, r) for c, r in self.shield.last_interventions if c not in seen]

    def state(self) -> ShieldState:
        state = self.supervisor.state
        if state == ShieldState.OK and self.shield.last_interventions:
            return ShieldState.INTERVENING
        return state

    def publish_status(self, force: bool = False) -> None:
        interventions = self.interventions()
        state = self.state()
        key = (state, tuple(c for c, _ in interventions))  # reasons carry changing numbers
        now = steady_ns()
        if not force and key == self._published_state and now - self._last_status_ns < self._status_period_ns:
            return
        self._published_state, self._last_status_ns = key, now
        counts = sorted(self.supervisor.counts.items())
        status = SafetyStatus(mode=self.mode, state=int(state), rejected=self.shield.rejected,
                              passed=self.shield.passed, interventions=[c for c, _ in interventions],
                              reasons=[r for _, r in interventions], count_codes=[c for c, _ in counts],
                              counts=[n for _, n in counts])
        status.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(status)

    def _report(self):
        interventions = self.interventions()
        actuating = self.get_parameter("actuation_enabled").value
        values = {"active": self.active, "state": self.state().name, "passed": self.shield.passed,
                  "rejected": self.shield.rejected,
                  "actuation_enabled": actuating, "withheld_dry_run": self.withheld,
                  **{f"count.{k}": n for k, n in sorted(self.supervisor.counts.items())}, **self.flow.values()}
        message = "; ".join(f"[{c}] {r}" for c, r in interventions) or "ok"
        if not actuating:
            message += " (dry run: actuation disabled)"
        if not self.active:
            return WARN, "inactive: no watchdog, status or commands", values
        return _LEVEL[self.state()], message, values
