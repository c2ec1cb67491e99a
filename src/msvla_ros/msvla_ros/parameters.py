"""Declare node parameters from msvla_core.params.ParamSpec lists, with descriptors and ranges."""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from msvla_core.params import ParamSpec

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    description = spec.description + (f" [{spec.unit}]" if spec.unit else "")
    if spec.choices:
        description += f" One of: {', '.join(spec.choices)}."
    d = ParameterDescriptor(name=spec.name, description=description, read_only=spec.read_only)
    if spec.type is list:
        sample = spec.default[0] if spec.default else 0.0
        d.type = {float: ParameterType.PARAMETER_DOUBLE_ARRAY, int: ParameterType.PARAMETER_INTEGER_ARRAY,
                  str: ParameterType.PARAMETER_STRING_ARRAY}[type(sample)]
        return d
    d.type = _TYPES[spec.type]
    if spec.min is not None and spec.max is not None:
        if spec.type is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max),
                                                         step=float(spec.step or 0.0))]
        elif spec.type is int:
            d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=int(spec.step or 1))]
    return d


def declare_parameters(node, specs: list[ParamSpec]) -> dict:
    """Declare every spec and return the validated values by name.

    rclpy already rejects values outside a descriptor's range at declaration; the spec's own check
    covers the rest (types of lists, choices) and raises ValueError naming the parameter.
    """
    values = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        values[spec.name] = spec.validate(param.value)
    return values
