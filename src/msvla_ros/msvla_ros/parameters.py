"""Declare node parameters from msvla_core.params.ParamSpec lists, with descriptors and ranges."""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.parameter import Parameter

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
        # rclpy types an empty list default as a byte array and would then refuse a list of doubles
        # from a parameter file: empty-list parameters are declared as (unset) double arrays.
        empty_list = spec.type is list and not spec.default
        default = Parameter.Type.DOUBLE_ARRAY if empty_list else spec.default
        param = node.declare_parameter(spec.name, default, _descriptor(spec))
        value = [] if empty_list and param.value is None else param.value
        values[spec.name] = spec.validate(value)
    return values


def undeclared_overrides(node, allowed_prefixes=("qos_overrides.",)) -> list[str]:
    """Parameters given to the node (files, --ros-args) that it never declared: usually a typo, which
    would otherwise silently leave the default in force."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy has no public list of overrides
    return sorted(name for name in given if not node.has_parameter(name)
                  and not name.startswith(allowed_prefixes))
