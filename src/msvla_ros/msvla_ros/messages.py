"""Conversions between ROS messages and msvla_core values that several nodes share."""
from __future__ import annotations

from builtin_interfaces.msg import Time


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def oldest_stamp_ns(header, ages) -> int:
    """Stamp (ns) of the oldest sensor data in a fused set: the reference stamp in `header` minus
    the largest of the FusedObservation's `ages` (seconds, positive = older than the reference)."""
    oldest_s = max((float(a) for a in ages), default=0.0)
    return stamp_to_ns(header.stamp) - int(round(max(oldest_s, 0.0) * 1e9))


def transform_stamped(xyz_quat, parent: str, child: str, stamp):
    """geometry_msgs/TransformStamped of the pose [x, y, z, qx, qy, qz, qw] of `child` in `parent`."""
    from geometry_msgs.msg import TransformStamped

    x, y, z, qx, qy, qz, qw = (float(v) for v in xyz_quat)
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t = msg.transform
    t.translation.x, t.translation.y, t.translation.z = x, y, z
    t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w = qx, qy, qz, qw
    return msg
