"""grasp_markers: what the Franka graph proposes and lets through, as rviz markers.

The VLA's proposal (yellow) and the shielded grasp (green) are drawn as a parallel gripper at the
grasp pose; a text above the workspace shows the instruction and the shield's state, coloured by
state. GraspPose is not a type rviz displays, hence this node; it only watches the graph.
"""
from __future__ import annotations

from geometry_msgs.msg import Point
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from msvla_core.geometry import gripper_outline
from msvla_core.params import ParamSpec
from msvla_msgs.msg import GraspPose, SafetyStatus
from msvla_ros.diagnostics import OK, Diagnostics, FlowStats
from msvla_ros.main import run
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import COMMAND, LATCHED
from msvla_ros.qos_events import PolledQosEvents

PARAMS = [
    ParamSpec("base_frame", "panda_link0", "Frame of the instruction/state text."),
    ParamSpec("text_position", [0.5, 0.0, 0.45], "Where the text is drawn in base_frame (x, y, z).", unit="m"),
    ParamSpec("lifetime", 5.0, "Seconds a grasp marker stays after its last update (0: forever).", unit="s",
              min=0.0, max=3600.0),
]
STATE_NAMES = {SafetyStatus.STATE_OK: "OK", SafetyStatus.STATE_INTERVENING: "INTERVENING",
               SafetyStatus.STATE_SAFE_STOP: "SAFE STOP", SafetyStatus.STATE_EMERGENCY: "EMERGENCY STOP"}
STATE_COLOURS = {SafetyStatus.STATE_OK: (0.2, 0.9, 0.2), SafetyStatus.STATE_INTERVENING: (1.0, 0.6, 0.0),
                 SafetyStatus.STATE_SAFE_STOP: (1.0, 0.1, 0.1), SafetyStatus.STATE_EMERGENCY: (1.0, 0.1, 0.1)}
PROPOSAL_COLOUR, GRASP_COLOUR = (1.0, 0.85, 0.0), (0.1, 0.9, 0.3)


def _colour(rgb) -> ColorRGBA:
    return ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=1.0)


def gripper_marker(grasp: GraspPose, namespace: str, rgb, lifetime_s: float) -> Marker:
    p, q = grasp.pose.position, grasp.pose.orientation
    points = gripper_outline((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), grasp.width)
    marker = Marker(header=grasp.header, ns=namespace, id=0, type=Marker.LINE_LIST, action=Marker.ADD,
                    color=_colour(rgb), points=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points])
    marker.pose.orientation.w = 1.0
    marker.scale.x = 0.006  # line width (m)
    marker.lifetime = Duration(seconds=lifetime_s).to_msg()
    return marker


class GraspMarkersNode(PolledQosEvents, Node):
    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return list(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("grasp_markers", **node_kwargs)
        self.values = declare_parameters(self, self.parameter_specs())
        if len(self.values["text_position"]) != 3:
            raise ValueError(f"parameter text_position must be [x, y, z], got {self.values['text_position']}")
        self.instruction = ""
        self.state: int | None = None
        self.pub = self.create_publisher(MarkerArray, "/msvla/markers", COMMAND)
        self.create_subscription(GraspPose, "/msvla/proposal/grasp",
                                 lambda m: self.publish_grasp(m, "proposal", PROPOSAL_COLOUR), COMMAND)
        self.create_subscription(GraspPose, "/msvla/grasp", lambda m: self.publish_grasp(m, "grasp", GRASP_COLOUR),
                                 COMMAND)
        self.create_subscription(String, "/msvla/instruction", self.on_instruction, LATCHED)
        self.create_subscription(SafetyStatus, "/msvla/safety/status", self.on_status, COMMAND)
        self.flow = FlowStats()
        self.diagnostics = Diagnostics(self, "viz/markers", lambda: (OK, "ok", self.flow.values()))

    def publish_grasp(self, grasp: GraspPose, namespace: str, rgb) -> None:
        self.flow.received(namespace)
        self.pub.publish(MarkerArray(markers=[gripper_marker(grasp, namespace, rgb, self.values["lifetime"])]))

    def on_instruction(self, msg: String) -> None:
        self.instruction = " ".join(msg.data.split())
        self.publish_text()

    def on_status(self, msg: SafetyStatus) -> None:
        if msg.state != self.state:
            self.state = msg.state
            self.publish_text()

    def publish_text(self) -> None:
        state = STATE_NAMES.get(self.state, "no shield status")
        text = Marker(ns="status", id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      text=f'"{self.instruction}"\nshield: {state}' if self.instruction else f"shield: {state}",
                      color=_colour(STATE_COLOURS.get(self.state, (0.8, 0.8, 0.8))))
        text.header.frame_id = self.values["base_frame"]
        text.header.stamp = self.get_clock().now().to_msg()
        x, y, z = self.values["text_position"]
        text.pose.position.x, text.pose.position.y, text.pose.position.z = float(x), float(y), float(z)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.04  # text height (m)
        self.pub.publish(MarkerArray(markers=[text]))


def main(args=None) -> int:
    return run(GraspMarkersNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
