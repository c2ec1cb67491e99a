"""proprio_encoder: sensor_msgs/JointState (+ optional recent actions) -> SensorFeature ("proprio").

`joint_names` selects and orders the joints the checkpoint was trained with (JointState messages
list joints in any order and may carry more of them). Velocity is required; effort is used when
the message has it. With `action_topic` set, the last K actions (K = the encoder's `history`)
received as std_msgs/Float32MultiArray (one action of the encoder's action_dim per message, in
the units the action head emits) are added as the action history, oldest first.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray

from msvla_core.data.joint_state import JointStateError, select_joints
from msvla_core.params import ParamSpec
from msvla_ros.main import run
from msvla_ros.qos import COMMAND

from .feature_node import FeatureEncoderNode

PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]

PARAMS = [
    ParamSpec("joint_names", list(PANDA_JOINTS),
              "Joints fed to the encoder, in the order it was trained with; each JointState must "
              "contain all of them."),
    ParamSpec("action_topic", "",
              "std_msgs/Float32MultiArray topic of executed actions for the action history; "
              "empty = no action history."),
]


class ProprioEncoderNode(FeatureEncoderNode):
    modality = "proprio"
    extra_params = tuple(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("proprio_encoder", **node_kwargs)
        params = self.encoder.params
        self.joint_names = list(self.values["joint_names"])
        if len(self.joint_names) != params.joints or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"parameter joint_names must list {params.joints} distinct joints (the "
                             f"encoder's `joints`), got {self.joint_names}")
        self.action_dim = params.action_dim
        self.actions: deque[np.ndarray] = deque(maxlen=max(params.history, 1))
        self.create_subscription(JointState, "/joint_states", self.on_joint_state, self.sensor_qos)
        topic = self.values["action_topic"]
        if topic and params.history == 0:
            self.get_logger().warning(f"action_topic={topic!r} ignored: the encoder keeps no action history")
        elif topic:
            self.create_subscription(Float32MultiArray, topic, self.on_action, COMMAND)

    def on_action(self, msg: Float32MultiArray) -> None:
        action = np.asarray(msg.data, dtype=np.float64)
        if action.shape != (self.action_dim,):
            self.drops.drop("malformed_action", f"action has {action.size} values; expected "
                                                f"action_dim={self.action_dim}")
            return
        if not np.isfinite(action).all():
            bad = np.flatnonzero(~np.isfinite(action)).tolist()
            self.drops.drop("non_finite_action", f"action entries {bad} are NaN or inf")
            return
        self.actions.append(action)

    def on_joint_state(self, msg: JointState) -> None:
        started = time.perf_counter()
        try:
            raw = select_joints(msg.name, msg.position, msg.velocity, msg.effort, self.joint_names)
        except JointStateError as exc:
            self.drops.drop(exc.reason, str(exc))
            return
        if self.actions:
            raw["action_history"] = np.stack(self.actions)
        self.encode_and_publish(msg.header, raw, started)


def main(args=None) -> int:
    return run(ProprioEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
