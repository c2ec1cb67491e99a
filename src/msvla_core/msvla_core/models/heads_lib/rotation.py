"""Rotation utilities for grasp heads (all batched over leading axes, float tensors).

Rotations are regressed in the continuous 6-D representation (the first two columns of the
matrix, orthonormalised by Gram-Schmidt): unlike quaternions or Euler angles it has no
discontinuity a network would have to jump across. Quaternions are (x, y, z, w).
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

_TINY = 1e-6
_PARALLEL = 1e-4  # relative residual below which the second column is treated as parallel


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=_TINY)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation whose columns are (b1, b2, b1 x b2).

    Degenerate inputs (a zero first column, or a second column parallel to the first) still give
    a proper rotation: a network output can land there, and a non-rotation would poison the
    geodesic loss and the executed grasp.
    """
    if d6.shape[-1] != 6:
        raise ValueError(f"rotation_6d must have last dimension 6, got shape {tuple(d6.shape)}")
    a1, a2 = d6[..., :3], d6[..., 3:]
    e = torch.eye(3, dtype=d6.dtype, device=d6.device)
    n1 = a1.norm(dim=-1, keepdim=True)
    b1 = torch.where(n1 > _TINY, a1 / n1.clamp(min=_TINY), e[0].expand_as(a1))

    u = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    scale = a2.norm(dim=-1, keepdim=True)
    # Fallback: the basis axis least aligned with b1, so the projection below is well conditioned.
    axis = e[b1.abs().argmin(dim=-1)]
    fallback = axis - (b1 * axis).sum(-1, keepdim=True) * b1
    u = torch.where(u.norm(dim=-1, keepdim=True) > _PARALLEL * scale.clamp(min=_TINY), u, fallback)
    # A second projection removes the float round-off left by the first when a2 is nearly
    # parallel to b1 ("twice is enough" for Gram-Schmidt).
    u = _unit(u)
    b2 = _unit(u - (b1 * u).sum(-1, keepdim=True) * b1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, the inverse of rotation_6d_to_matrix."""
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def geodesic_angle(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Angle in radians, in [0, pi], of the rotation taking r1 to r2 (both (..., 3, 3)).

    atan2(sin, cos) instead of acos(cos): acos has an infinite slope at 0 and pi, which stalls
    training exactly where predictions get good, and clamping its argument biases the result.
    """
    rel = r1.transpose(-1, -2) @ r2
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    axis = torch.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
                        rel[..., 1, 0] - rel[..., 0, 1]], dim=-1)
    sin = 0.5 * torch.sqrt((axis * axis).sum(-1) + 1e-12)  # eps keeps the gradient finite at 0
    return torch.atan2(sin, cos)


def rotate_about_z(matrix: torch.Tensor, angle: float) -> torch.Tensor:
    """Right-multiply by a rotation about the local z axis (the grasp approach axis)."""
    c, s = math.cos(angle), math.sin(angle)
    rz = matrix.new_tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return matrix @ rz


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternion (x, y, z, w) with w >= 0.

    Each of the four standard formulas divides by one quaternion component; using, per
    rotation, the one whose component is largest keeps the division well away from zero.
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    # 4 * (squared component) for w, x, y, z
    sq = torch.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    root = torch.sqrt(sq.clamp(min=1e-12))  # = 2 * |component|
    r21, r12 = m[..., 2, 1] - m[..., 1, 2], m[..., 2, 1] + m[..., 1, 2]
    r02, r20 = m[..., 0, 2] - m[..., 2, 0], m[..., 0, 2] + m[..., 2, 0]
    r10, r01 = m[..., 1, 0] - m[..., 0, 1], m[..., 1, 0] + m[..., 0, 1]
    # Row k holds 4 q_k (x, y, z, w) built from component k (order w, x, y, z); dividing by
    # 4 |q_k| leaves the quaternion up to sign, fixed below.
    candidates = torch.stack([
        torch.stack([r21, r02, r10, sq[..., 0]], -1),
        torch.stack([sq[..., 1], r01, r20, r21], -1),
        torch.stack([r01, sq[..., 2], r12, r02], -1),
        torch.stack([r20, r12, sq[..., 3], r10], -1),
    ], dim=-2) / (2.0 * root[..., None])
    best = sq.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., 3:4] < 0, -q, q)


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternion (x, y, z, w), normalised here, -> (..., 3, 3) rotation matrix."""
    if quaternion.shape[-1] != 4:
        raise ValueError(f"quaternion must have last dimension 4 (x, y, z, w), got {tuple(quaternion.shape)}")
    x, y, z, w = F.normalize(quaternion, dim=-1).unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], dim=-2)
