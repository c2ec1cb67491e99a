"""Safety-shield logic (pure Python); msvla_safety wraps it in nodes."""
from .checks import ProposalChecks, ProposalLimits
from .grasp_shield import Decision, GraspLimits, GraspProposal, GraspShield
from .supervisor import FAULT_CODES, ShieldState, Supervisor, WatchdogLimits
from .vehicle_shield import VehicleLimits, VehicleOutput, VehicleProposal, VehicleShield

__all__ = ["FAULT_CODES", "Decision", "GraspLimits", "GraspProposal", "GraspShield", "ProposalChecks",
           "ProposalLimits", "ShieldState", "Supervisor", "VehicleLimits", "VehicleOutput", "VehicleProposal",
           "VehicleShield", "WatchdogLimits"]
