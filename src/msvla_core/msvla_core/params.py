"""Node parameters declared once: name, type, default, range, unit and description.

The ROS edge (msvla_ros.parameters) turns these into declare_parameter calls with descriptors and
ranges; validation here gives the same errors with or without ROS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = True

    @property
    def type(self) -> type:
        return type(self.default)

    def validate(self, value: Any) -> Any:
        """Return the value if it satisfies this spec, else raise ValueError naming the parameter."""
        expected = self.type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is list:
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"parameter {self.name}: expected a list, got {value!r}")
            return list(value)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ValueError(f"parameter {self.name}: expected {expected.__name__}, got {value!r}")
        if self.min is not None and value < self.min:
            raise ValueError(f"parameter {self.name}={value} is below its minimum {self.min} {self.unit}".rstrip())
        if self.max is not None and value > self.max:
            raise ValueError(f"parameter {self.name}={value} is above its maximum {self.max} {self.unit}".rstrip())
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"parameter {self.name}={value!r} is not one of {list(self.choices)}")
        return value
