"""Evaluation variants of a graph, derived from its spec rather than from a list of node names, so
a graph that gains a node (another sensor encoder) is evaluated without touching this code:

* which nodes are sensor encoders and which modality each publishes;
* which nodes load the checkpoint;
* the graph with some encoders left out (sensor ablation), and what that does to the fusion node
  and to the shield's required modalities;
* the graph without its safety shield, the VLA's proposals going straight to the vehicle
  (simulation only).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .graph import GraphSpec, node_parameters

ENCODER_PACKAGE = "msvla_encoders"
SHIELD_PACKAGE = "msvla_safety"
VLA_PACKAGE = "msvla_vla"
# vla_node publishes a vehicle head's proposals on VEHICLE_PROPOSAL_TOPIC (msvla_vla/vla_node.py);
# the shield turns them into the only commands the vehicle executes, on VEHICLE_COMMAND_TOPIC.
VEHICLE_PROPOSAL_TOPIC = "/msvla/proposal/vehicle"
VEHICLE_COMMAND_TOPIC = "/msvla/vehicle/command"


class GraphVariantError(ValueError):
    """A variant does not fit the graph (unknown modality, no shield, not a simulation)."""


def encoder_modalities(spec: GraphSpec, base: Path) -> dict[str, str]:
    """{encoder node: modality it publishes (/msvla/features/<modality>)}: its `modality` parameter,
    else the executable's default, which every msvla_encoders executable carries in its name
    (<default modality>_encoder)."""
    out = {}
    for node in spec.nodes:
        if node.package == ENCODER_PACKAGE:
            default = node.executable.removesuffix("_encoder")
            out[node.name] = str(node_parameters(node, base).get("modality", default))
    return out


def model_nodes(spec: GraphSpec, base: Path) -> list[str]:
    """Nodes whose parameter files name a checkpoint: the ones a checkpoint under test replaces."""
    return [n.name for n in spec.nodes if "checkpoint" in node_parameters(n, base)]


def ablate(spec: GraphSpec, base: Path, modalities) -> GraphSpec:
    """The graph without the encoder nodes of `modalities`, as if those sensors had failed."""
    modalities = list(modalities)
    encoders = encoder_modalities(spec, base)
    unknown = sorted(set(modalities) - set(encoders.values()))
    if unknown:
        raise GraphVariantError(f"cannot ablate {unknown}: graph {spec.name} has encoders for "
                                f"{sorted(set(encoders.values()))}")
    if not modalities:
        return spec
    drop = {node for node, m in encoders.items() if m in modalities}
    return GraphSpec(name=f"{spec.name}_without_{'_'.join(modalities)}",
                     description=f"{spec.description} (sensor ablation: no {', '.join(modalities)} encoder)",
                     nodes=[n for n in spec.nodes if n.name not in drop])


@dataclass
class AblationEffects:
    """What leaving sensors out does to the rest of the graph: results of the ablation, reported
    next to its numbers."""

    notes: list[str] = field(default_factory=list)
    shield_stops: bool = False           # the shield requires an ablated modality: it will not arm


def ablation_effects(spec: GraphSpec, base: Path, ablated, overrides: dict[str, dict]) -> AblationEffects:
    """Effects of `ablated` on the (ablated) graph `spec` run with `overrides`: a fusion node whose
    reference modality is gone publishes nothing, so the VLA proposes nothing; a shield that
    requires an ablated modality holds the vehicle in its safe state."""
    ablated = set(ablated)
    effects = AblationEffects()
    for node in spec.nodes:
        params = {**node_parameters(node, base), **overrides.get(node.name, {})}
        if node.package == "msvla_fusion" and params.get("reference_modality") in ablated:
            effects.notes.append(f"{node.name}: reference_modality {params['reference_modality']!r} is ablated, "
                                 f"so it publishes no fused observation and the VLA proposes nothing")
        required = sorted(ablated & set(params.get("required_modalities", [])))
        if node.package == SHIELD_PACKAGE and required:
            effects.shield_stops = True
            effects.notes.append(f"{node.name}: required_modalities includes the ablated {required}, so it "
                                 f"holds the vehicle in its safe state (refuses to drive)")
    return effects


def without_shield(spec: GraphSpec, simulation: bool) -> GraphSpec:
    """The graph with the safety shield removed and the VLA's proposals remapped from
    VEHICLE_PROPOSAL_TOPIC to VEHICLE_COMMAND_TOPIC, which the vehicle executes unfiltered.

    Evaluation only, and only against the simulator: it measures what the shield adds. Refused
    unless the graph runs as a simulation and has a simulation-only node (the simulator)."""
    if not simulation:
        raise GraphVariantError(f"refusing to remove the safety shield of {spec.name} outside simulation: "
                                f"unshielded commands are for simulated evaluation only")
    if not any(n.simulation_only for n in spec.nodes):
        raise GraphVariantError(f"refusing to remove the safety shield of {spec.name}: the graph has no "
                                f"simulation-only node (simulator), so its commands would reach a real vehicle")
    shields = [n for n in spec.nodes if n.package == SHIELD_PACKAGE]
    vlas = [n for n in spec.nodes if n.package == VLA_PACKAGE]
    if len(shields) != 1 or len(vlas) != 1:
        raise GraphVariantError(f"graph {spec.name} needs exactly one {SHIELD_PACKAGE} node and one "
                                f"{VLA_PACKAGE} node to remove the shield; it has {[n.name for n in shields]} "
                                f"and {[n.name for n in vlas]}")
    vla = vlas[0]
    forwarded = replace(vla, remappings={**vla.remappings, VEHICLE_PROPOSAL_TOPIC: VEHICLE_COMMAND_TOPIC})
    return GraphSpec(name=f"{spec.name}_shield_off",
                     description=f"{spec.description} (SIMULATION ONLY: no safety shield, the VLA's proposals "
                                 f"are executed as they are)",
                     nodes=[forwarded if n is vla else n for n in spec.nodes if n is not shields[0]])
