"""Safety-shield logic (pure Python); msvla_safety wraps it in nodes."""
from .checks import ProposalChecks, ProposalLimits
from .grasp_shield import Decision, GraspLimits, GraspProposal, GraspShield
from .supervisor import FAULT_CODES, ShieldState, Supervisor, WatchdogLimits

__all__ = ["FAULT_CODES", "Decision", "GraspLimits", "GraspProposal", "GraspShield", "ProposalChecks",
           "ProposalLimits", "ShieldState", "Supervisor", "WatchdogLimits"]
