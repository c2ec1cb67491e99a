"""Action heads of the configurable VLA; importing this package registers them in HEADS."""
from . import diffusion, gaussian, grasp, trajectory, vehicle  # noqa: F401  (registration)
from .rotation import geodesic_angle, matrix_to_quaternion, quaternion_to_matrix, rotation_6d_to_matrix
from .trajectory import winner_take_all

__all__ = ["geodesic_angle", "matrix_to_quaternion", "quaternion_to_matrix", "rotation_6d_to_matrix",
           "winner_take_all"]
