"""What every node of the workspace exposes: topics with their types and QoS, services, parameters.

Parameters come from each node class's `parameter_specs()` (the list its constructor declares),
so this module adds only what a node cannot say about itself without running: its topics. The
package READMEs' interface sections and the default parameter files in `config/params/` are
generated from here (`python -m msvla_bringup.interface_docs --write`); tests check that the
generated files are current and that running nodes create exactly the documented endpoints.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

# QoS names as the README tables print them; the profiles are msvla_ros.qos.
QOS = {
    "sensor_data": "best effort, volatile, keep last 5 (rclpy qos_profile_sensor_data)",
    "sensor_param": "best effort or reliable (`reliability` parameter), keep last `queue_depth`",
    "feature": "reliable, volatile, keep last 5",
    "command": "reliable, volatile, keep last 10",
    "latched": "reliable, transient local, keep last 1",
    "heartbeat": "reliable, volatile, keep last 1",
    "diagnostics": "reliable, volatile, keep last 10",
}


@dataclass(frozen=True)
class Endpoint:
    topic: str  # absolute, or "~/..." in the node's namespace; "<modality>": the modality parameter
    type: str  # ROS type name as the graph reports it, e.g. "sensor_msgs/msg/Image"
    qos: str  # a key of QOS
    description: str
    topic_param: str = ""  # the topic name is this parameter's value (documented as <param>)
    only_when: str = ""  # the node creates it only in this case (a parameter or checkpoint choice)
    when_param: str = ""  # ... namely when this parameter is true

    def condition(self) -> str:
        return self.only_when or (f"`{self.when_param}` is true" if self.when_param else "")

    def __post_init__(self):
        if self.qos not in QOS:
            raise ValueError(f"{self.topic}: unknown QoS name {self.qos!r}; one of {sorted(QOS)}")


@dataclass(frozen=True)
class Service:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class NodeInterface:
    package: str
    executable: str
    node_name: str
    node_class: str  # "module:Class"; the class has a parameter_specs() classmethod
    summary: str
    subscribes: tuple[Endpoint, ...] = ()
    publishes: tuple[Endpoint, ...] = ()
    services: tuple[Service, ...] = ()

    def load_class(self):
        module, name = self.node_class.split(":")
        return getattr(importlib.import_module(module), name)

    def parameter_specs(self):
        return self.load_class().parameter_specs()


DIAGNOSTICS = Endpoint("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", "diagnostics",
                       "One DiagnosticStatus per second: rates, drops by reason, latencies.")
FEATURE_OUT = Endpoint("/msvla/features/<modality>", "msvla_msgs/msg/SensorFeature", "feature",
                       "Encoded feature map with the source message's stamp and the checkpoint id.")
CAMERA_POSE = Endpoint("<extrinsics_topic>", "geometry_msgs/msg/TransformStamped", "latched",
                       "Camera pose in the base frame.", topic_param="extrinsics_topic",
                       only_when="`extrinsics_topic` is set")
TRANSITIONS = Endpoint("~/transition_event", "lifecycle_msgs/msg/TransitionEvent", "command",
                       "Lifecycle transitions of this managed node (configure, activate, ...).")
FUSED = Endpoint("/msvla/fused", "msvla_msgs/msg/FusedObservation", "feature",
                 "Time-synchronised feature maps of one instant.")
INSTRUCTION = Endpoint("/msvla/instruction", "std_msgs/msg/String", "latched",
                       "The language instruction; empty clears it.")
HEARTBEAT = Endpoint("/msvla/vla/heartbeat", "msvla_msgs/msg/Heartbeat", "heartbeat",
                     "Liveness of the VLA node and whether its recent outputs were usable.")
SIM_RESET = Endpoint("/sim/reset", "std_msgs/msg/Int64", "command", "Start a new episode with this seed.")
SIM_SCENE = Endpoint("/sim/scene", "std_msgs/msg/String", "latched", "JSON description of the episode's scene.")
ODOM = "nav_msgs/msg/Odometry"
CLOUD = "sensor_msgs/msg/PointCloud2"
IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
GRASP = "msvla_msgs/msg/GraspPose"
VEHICLE = "msvla_msgs/msg/VehicleCommand"


def _encoder(executable: str, cls: str, summary: str, inputs: tuple[Endpoint, ...]) -> NodeInterface:
    return NodeInterface("msvla_encoders", executable, executable, f"msvla_encoders.{executable}_node:{cls}",
                         summary, subscribes=inputs, publishes=(FEATURE_OUT, DIAGNOSTICS))


_SHIELD_COMMON_IN = (
    FUSED,
    HEARTBEAT,
    Endpoint("/msvla/safety/emergency_stop", "std_msgs/msg/Bool", "latched",
             "true latches the emergency stop (a hardware button or an operator)."),
)
_SHIELD_STATUS = Endpoint("/msvla/safety/status", "msvla_msgs/msg/SafetyStatus", "command",
                          "Shield state, interventions and their reasons, on change and at `status_rate`.")
_SHIELD_SERVICES = (
    Service("/msvla/safety/trigger_emergency_stop", "std_srvs/srv/Trigger", "Latch the emergency stop."),
    Service("/msvla/safety/reset", "std_srvs/srv/Trigger",
            "Leave a latched stop; refused (with the reason) while a cause persists."),
    Service("/msvla/safety/enable_actuation", "std_srvs/srv/SetBool",
            "Sets `actuation_enabled`: true lets checked commands reach the robot, false is a dry run."),
)

NODES: tuple[NodeInterface, ...] = (
    _encoder("rgb_encoder", "RgbEncoderNode", "Colour image -> RGB feature map (optionally with the "
             "table-plane geometry for RGB-only graphs).", (
                 Endpoint("/camera/color/image_raw", IMAGE, "sensor_param", "rgb8/bgr8/rgba8/bgra8/mono8 image."),
                 Endpoint("/camera/color/camera_info", CAMERA_INFO, "sensor_param",
                          "Intrinsics.", when_param="plane_geometry"),
                 CAMERA_POSE)),
    _encoder("depth_encoder", "DepthEncoderNode", "Depth image -> depth feature map with the base-frame "
             "geometry of every feature cell.", (
                 Endpoint("/camera/depth/image_raw", IMAGE, "sensor_param", "16UC1 (mm) or 32FC1 (m) depth."),
                 Endpoint("/camera/depth/camera_info", CAMERA_INFO, "sensor_param", "Depth camera intrinsics."),
                 CAMERA_POSE)),
    _encoder("lidar_encoder", "LidarEncoderNode", "LiDAR point cloud -> LiDAR feature.", (
        Endpoint("/lidar/points", CLOUD, "sensor_param", "x, y, z (m), optional intensity."),)),
    _encoder("radar_encoder", "RadarEncoderNode", "Radar targets -> radar feature.", (
        Endpoint("/radar/targets", CLOUD, "sensor_param", "Targets: position (m), radial velocity (m/s), RCS."),)),
    _encoder("imu_encoder", "ImuEncoderNode", "Window of IMU samples -> IMU feature.", (
        Endpoint("/imu/data", "sensor_msgs/msg/Imu", "sensor_param", "Angular velocity (rad/s), linear "
                 "acceleration (m/s^2)."),
        Endpoint("<align_to_topic>", CAMERA_INFO, "sensor_param", "Frames of the camera the windows end at "
                 "(keep last 5 whatever `queue_depth`: older frames get no window).",
                 topic_param="align_to_topic", only_when="`align_to_topic` is set"))),
    _encoder("tactile_encoder", "TactileEncoderNode", "Tactile sensor -> tactile feature; the input "
             "depends on the checkpoint's tactile encoder type.", (
                 Endpoint("/tactile/pressure", IMAGE, "sensor_param", "32FC1 pressure (kPa).",
                          only_when="the encoder is tactile_grid"),
                 Endpoint("/tactile/image", IMAGE, "sensor_param", "rgb8/bgr8 gel image.",
                          only_when="the encoder is tactile_gelsight"),
                 Endpoint("/tactile/biotac", "std_msgs/msg/Float32MultiArray", "sensor_param",
                          "Electrode, PDC and TAC values.", only_when="the encoder is tactile_biotac"))),
    _encoder("proprio_encoder", "ProprioEncoderNode", "Joint states (and optionally past actions) -> "
             "proprioception feature.", (
                 Endpoint("/joint_states", "sensor_msgs/msg/JointState", "sensor_param",
                          "Positions (rad or m) and velocities of the encoder's joints."),
                 Endpoint("<action_topic>", "std_msgs/msg/Float32MultiArray", "command",
                          "Past actions.", topic_param="action_topic",
                          only_when="`action_topic` is set and the encoder keeps history"))),
    NodeInterface(
        "msvla_fusion", "fusion_node", "fusion_node", "msvla_fusion.fusion_node:FusionNode",
        "Synchronises the features of one instant (ApproximateSynchronizer) and publishes them together.",
        subscribes=(Endpoint("/msvla/features/<modality>", "msvla_msgs/msg/SensorFeature", "feature",
                             "One subscription per modality of the checkpoint."),),
        publishes=(FUSED, DIAGNOSTICS)),
    NodeInterface(
        "msvla_vla", "vla_node", "vla_node", "msvla_vla.vla_node:VlaNode",
        "Instruction + fused observation -> action proposal (the policy component of the checkpoint).",
        subscribes=(INSTRUCTION, FUSED),
        publishes=(Endpoint("/msvla/proposal/grasp", GRASP, "command", "Grasp proposal."),
                   Endpoint("/msvla/proposal/vehicle", VEHICLE, "command", "Control proposal."),
                   Endpoint("/msvla/vla/heatmap", IMAGE, "feature",
                            "Grasp head's per-cell probabilities, mono8 scaled to the peak, stamped and "
                            "framed as the fused observation.", when_param="publish_heatmap"),
                   HEARTBEAT, TRANSITIONS, DIAGNOSTICS)),
    NodeInterface(
        "msvla_safety", "grasp_shield", "safety_shield", "msvla_safety.grasp_shield_node:GraspShieldNode",
        "Checks grasp proposals against workspace, table, approach, width and score limits and a "
        "watchdog; the only node that publishes grasps to the robot.",
        subscribes=(Endpoint("/msvla/proposal/grasp", GRASP, "command", "Proposals of the VLA node."),
                    *_SHIELD_COMMON_IN),
        publishes=(Endpoint("/msvla/grasp", GRASP, "command", "Shielded grasp for the robot."),
                   _SHIELD_STATUS, TRANSITIONS, DIAGNOSTICS),
        services=_SHIELD_SERVICES),
    NodeInterface(
        "msvla_safety", "vehicle_shield", "safety_shield", "msvla_safety.vehicle_shield_node:VehicleShieldNode",
        "Clamps steering/throttle/brake and their rates, brakes for obstacles in the LiDAR/radar "
        "corridor and runs a watchdog; the only node that publishes vehicle commands.",
        subscribes=(Endpoint("/msvla/proposal/vehicle", VEHICLE, "command", "Proposals of the VLA node."),
                    Endpoint("/odom", ODOM, "sensor_data", "Speed and yaw rate of the vehicle."),
                    Endpoint("/lidar/points", CLOUD, "sensor_data",
                             "Obstacles.", only_when="`obstacle_sources` has lidar"),
                    Endpoint("/radar/targets", CLOUD, "sensor_data",
                             "Obstacles.", only_when="`obstacle_sources` has radar"),
                    *_SHIELD_COMMON_IN),
        publishes=(Endpoint("/msvla/vehicle/command", VEHICLE, "command", "Shielded command for the vehicle."),
                   _SHIELD_STATUS, TRANSITIONS, DIAGNOSTICS),
        services=_SHIELD_SERVICES),
    NodeInterface(
        "msvla_bringup", "grasp_markers", "grasp_markers", "msvla_bringup.grasp_markers_node:GraspMarkersNode",
        "rviz markers: the proposed (yellow) and shielded (green) grasp as a gripper outline, the instruction "
        "and the shield state as text.",
        subscribes=(Endpoint("/msvla/proposal/grasp", GRASP, "command", "Proposals of the VLA node."),
                    Endpoint("/msvla/grasp", GRASP, "command", "Shielded grasps."),
                    INSTRUCTION,
                    Endpoint("/msvla/safety/status", "msvla_msgs/msg/SafetyStatus", "command", "Shield state.")),
        publishes=(Endpoint("/msvla/markers", "visualization_msgs/msg/MarkerArray", "command",
                            "Gripper outlines (namespaces proposal, grasp) and the status text."),
                   DIAGNOSTICS)),
    NodeInterface(
        "msvla_sim", "franka_sim", "franka_sim", "msvla_sim.franka_sim_node:FrankaSimNode",
        "PyBullet Franka Panda tabletop: RGB-D camera and joint states out, shielded grasps executed.",
        subscribes=(Endpoint("/msvla/grasp", GRASP, "command", "Grasps to execute."),
                    INSTRUCTION, SIM_RESET),
        publishes=(Endpoint("/camera/color/image_raw", IMAGE, "sensor_data", "rgb8 image."),
                   Endpoint("/camera/color/camera_info", CAMERA_INFO, "sensor_data", "Colour intrinsics."),
                   Endpoint("/camera/depth/image_raw", IMAGE, "sensor_data", "32FC1 depth (m), noise and holes."),
                   Endpoint("/camera/depth/camera_info", CAMERA_INFO, "sensor_data", "Depth intrinsics."),
                   Endpoint("/joint_states", "sensor_msgs/msg/JointState", "sensor_data", "Panda joints."),
                   Endpoint("/camera/extrinsics", "geometry_msgs/msg/TransformStamped", "latched",
                            "Camera pose in panda_link0 (with the episode's jitter)."),
                   SIM_SCENE,
                   Endpoint("/sim/grasp_outcome", "std_msgs/msg/String", "command",
                            "JSON outcome of an executed grasp (what was lifted)."),
                   DIAGNOSTICS)),
    NodeInterface(
        "msvla_sim", "vehicle_sim", "vehicle_sim", "msvla_sim.vehicle_sim_node:VehicleSimNode",
        "PyBullet car on a road course: camera, LiDAR, radar, IMU, odometry out, commands applied.",
        subscribes=(Endpoint("/msvla/vehicle/command", VEHICLE, "command", "Shielded commands."), SIM_RESET),
        publishes=(Endpoint("/camera/color/image_raw", IMAGE, "sensor_data", "rgb8 front camera."),
                   Endpoint("/camera/color/camera_info", CAMERA_INFO, "sensor_data", "Camera intrinsics."),
                   Endpoint("/lidar/points", CLOUD, "sensor_data", "LiDAR scan in the lidar frame."),
                   Endpoint("/radar/targets", CLOUD, "sensor_data", "Radar targets in the radar frame."),
                   Endpoint("/imu/data", "sensor_msgs/msg/Imu", "sensor_data", "IMU in base_link."),
                   Endpoint("/odom", ODOM, "sensor_data", "Odometry of base_link in odom."),
                   Endpoint("/joint_states", "sensor_msgs/msg/JointState", "sensor_data",
                            "Steering angle and wheel speeds."),
                   SIM_SCENE,
                   Endpoint("/camera/extrinsics", "geometry_msgs/msg/TransformStamped", "latched",
                            "Camera pose in base_link."),
                   Endpoint("/sim/vehicle_status", "std_msgs/msg/String", "command",
                            "JSON episode status: progress, collisions, stops."),
                   DIAGNOSTICS)),
)


def by_executable(executable: str) -> NodeInterface:
    for node in NODES:
        if node.executable == executable:
            return node
    raise KeyError(f"no node with executable {executable!r}; known: {[n.executable for n in NODES]}")


# Endpoints every rclpy node creates by itself.
_IMPLICIT_TOPICS = {"/rosout", "/parameter_events"}
_RELIABILITY = {"sensor_data": "BEST_EFFORT", "feature": "RELIABLE", "command": "RELIABLE",
                "latched": "RELIABLE", "heartbeat": "RELIABLE", "diagnostics": "RELIABLE"}


def _declared_for(topic: str, msg_type: str, declared: tuple[Endpoint, ...], node: str) -> Endpoint | None:
    for e in declared:
        if e.type != msg_type:
            continue
        if e.topic_param or e.topic.replace("~", f"/{node}", 1) == topic:
            return e
        if "<modality>" in e.topic:
            head, tail = e.topic.split("<modality>")
            if topic.startswith(head) and topic.endswith(tail) and "/" not in topic[len(head):len(topic) - len(tail)]:
                return e
    return None


def undocumented_endpoints(ros_node, interface: NodeInterface, name: str, namespace: str = "/",
                           remappings: dict[str, str] | None = None) -> tuple[list[str], int]:
    """What the running node `name` publishes, subscribes or serves that `interface` does not
    document, or with another reliability/durability than documented ([] when they agree), and
    how many endpoints were compared. `ros_node` is any node on the same graph (used for graph
    introspection only); `remappings` (documented name -> name in this graph) are undone first."""
    problems, compared = [], 0
    original = {new: old for old, new in (remappings or {}).items()}
    # Per topic rather than per node: a node name that appears twice (a restarted process not yet
    # gone from discovery) makes the by-node queries answer for only one of them.
    for topic, _ in ros_node.get_topic_names_and_types():
        if topic in _IMPLICIT_TOPICS:
            continue
        for what, info_by_topic, declared in (
                ("publishes", ros_node.get_publishers_info_by_topic, interface.publishes),
                ("subscribes", ros_node.get_subscriptions_info_by_topic, interface.subscribes)):
            for info in info_by_topic(topic):
                if info.node_name != name or info.node_namespace != namespace:
                    continue
                compared += 1
                e = _declared_for(original.get(topic, topic), info.topic_type, declared, name)
                if e is None:
                    problems.append(f"{name} {what} {topic} [{info.topic_type}], not documented")
                    continue
                qos = info.qos_profile
                want = _RELIABILITY.get(e.qos)
                if want and qos.reliability.name != want:
                    problems.append(f"{name} {what} {topic} {qos.reliability.name}, documented {e.qos}")
                if (qos.durability.name == "TRANSIENT_LOCAL") != (e.qos == "latched"):
                    problems.append(f"{name} {what} {topic} durability {qos.durability.name}, documented {e.qos}")
    services = {s.name: s.type for s in interface.services}
    own_prefix = f"{namespace.rstrip('/')}/{name}/"  # the parameter services rclpy adds
    for service, types in ros_node.get_service_names_and_types_by_node(name, namespace):
        if service.startswith(own_prefix):
            continue
        compared += 1
        if services.get(original.get(service, service)) not in types:
            problems.append(f"{name} serves {service} {types}, not documented")
    return problems, compared


def graph_interface_problems(ros_node, nodes) -> list[str]:
    """undocumented_endpoints for every running node (NodeSpecs of a graph); a node whose graph
    shows no endpoint at all is a problem too (it is not running, or discovery has not seen it)."""
    problems = []
    for node in nodes:
        found, compared = undocumented_endpoints(ros_node, by_executable(node.executable), node.name,
                                                 remappings=node.remappings)
        problems += found if compared else [f"{node.name}: no endpoints seen on the graph"]
    return problems


def settled_interface_problems(driver, nodes, timeout_s: float = 10.0, alive_check=None) -> list[str]:
    """graph_interface_problems once the graph agrees with the documentation, or as they stand
    after timeout_s: discovery delivers each participant's endpoints separately, so a first look
    can miss endpoints that exist. `driver` is an EpisodeDriver-like node (spin_until)."""
    problems = []

    def agree() -> bool:
        problems[:] = graph_interface_problems(driver, nodes)
        return not problems

    driver.spin_until(agree, timeout_s, alive_check)
    return problems


def expected_topics(interface: NodeInterface, params: dict, node_name: str = "") -> list[tuple[str, str, str]]:
    """(role "pub"/"sub", topic, type) that the node (named `node_name` in its graph) always creates
    when started with `params` (its parameter files' values; defaults fill the rest): endpoints
    that exist only in some cases are left out, placeholders are resolved from the parameters."""
    values = {s.name: s.default for s in interface.parameter_specs()} | dict(params)
    topics = []
    for role, endpoints in (("pub", interface.publishes), ("sub", interface.subscribes)):
        for e in endpoints:
            if e.when_param and not values.get(e.when_param):
                continue
            if e.only_when and not (e.when_param or e.topic_param):
                continue  # decided by something the parameters do not show (the checkpoint)
            if e.topic_param:
                names = [values[e.topic_param]] if values.get(e.topic_param) else []
            elif "<modality>" in e.topic:
                modalities = values["modalities"] if "modalities" in values else [values["modality"]]
                names = [e.topic.replace("<modality>", m) for m in modalities]
            else:
                names = [e.topic.replace("~", f"/{node_name or interface.node_name}", 1)]
            topics += [(role, name, e.type) for name in names]
    return topics
