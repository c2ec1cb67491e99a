"""Safety-shield logic (pure Python); msvla_safety wraps it in a node."""
from .grasp_shield import Decision, GraspLimits, GraspProposal, GraspShield

__all__ = ["Decision", "GraspLimits", "GraspProposal", "GraspShield"]
