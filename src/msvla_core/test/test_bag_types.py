"""The rosbags type store knows the MSVLA interfaces with the same fields as the .msg files."""
from msvla_core.data.bag_types import default_msg_dir, msvla_typestore


def test_every_interface_is_registered_with_its_fields():
    store = msvla_typestore()
    for path in default_msg_dir().glob("*.msg"):
        assert f"msvla_msgs/msg/{path.stem}" in store.types
    grasp = store.types["msvla_msgs/msg/GraspPose"]
    fields = grasp.__dataclass_fields__
    assert {"header", "pose", "width", "score", "instruction", "model_id"} <= set(fields)


def test_a_grasp_pose_survives_cdr_serialisation():
    store = msvla_typestore()
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    Pose, Point, Quaternion = (store.types[f"geometry_msgs/msg/{n}"] for n in ("Pose", "Point", "Quaternion"))
    GraspPose = store.types["msvla_msgs/msg/GraspPose"]
    msg = GraspPose(header=Header(stamp=Time(sec=5, nanosec=7), frame_id="panda_link0"),
                    pose=Pose(position=Point(x=0.5, y=0.1, z=0.02), orientation=Quaternion(x=1.0, y=0.0, z=0.0, w=0.0)),
                    width=0.04, score=0.9, instruction="pick up the red cube", model_id="expert")
    back = store.deserialize_cdr(store.serialize_cdr(msg, GraspPose.__msgtype__), GraspPose.__msgtype__)
    assert back.pose.position.y == 0.1 and back.instruction == "pick up the red cube" and back.header.stamp.nanosec == 7
