"""Load YAML configuration into typed dataclasses with precise error messages.

Every error names the file and the key path (``nodes[2].parameters``) so a
typo in a launch config is reported where it is, not as an obscure failure
inside whichever node happens to read the value later.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A configuration file or mapping does not match its schema."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            continue  # construct_mapping below reports unhashable keys itself
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path) -> Any:
    """Parse a YAML file; an empty file yields ``{}``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    return {} if data is None else data


def load_config(cls: type, path) -> Any:
    """Load a YAML file straight into dataclass ``cls``."""
    return from_dict(cls, load_yaml(path), str(path))


def from_dict(cls: type, data: Any, where: str = "<config>") -> Any:
    """Build dataclass ``cls`` from ``data``, checking keys and types.

    ``where`` (usually the file name) prefixes every error message.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    return _convert(cls, data, _Ctx(where, ""))


@dataclasses.dataclass(frozen=True)
class _Ctx:
    where: str
    path: str

    def key(self, name: str) -> _Ctx:
        return _Ctx(self.where, f"{self.path}.{name}" if self.path else name)

    def index(self, i: int) -> _Ctx:
        return _Ctx(self.where, f"{self.path}[{i}]")

    def error(self, message: str) -> ConfigError:
        prefix = f"{self.where}: {self.path}" if self.path else self.where
        return ConfigError(f"{prefix}: {message}")


def _type_name(tp: Any) -> str:
    """Readable annotation name without module prefixes: list[NodeSpec], int | None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None) or tp is None:
        return "None"
    if tp is Ellipsis:
        return "..."
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]" if args else origin.__name__
    return getattr(tp, "__name__", str(tp))


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _mismatch(tp: Any, value: Any, ctx: _Ctx) -> ConfigError:
    hint = ""
    if tp is float and isinstance(value, str):
        try:
            float(value)
            # YAML 1.1 reads exponents without a dot (1e-3) as strings.
            hint = "; write numbers with a dot, e.g. 1.0e-3, so YAML reads them as floats"
        except ValueError:
            pass
    return ctx.error(f"expected {_type_name(tp)}, got {_got(value)}{hint}")


def _convert(tp: Any, value: Any, ctx: _Ctx) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if tp in (list, tuple, dict):  # bare container annotations mean "any items"
        origin, args = tp, ()
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build_dataclass(tp, value, ctx)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, args, value, ctx)
    if origin is Literal:
        # Compare types too: YAML's true must not satisfy Literal[1].
        if any(value == a and type(value) is type(a) for a in args):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ctx.error(f"expected one of {choices}, got {_got(value)}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _mismatch(tp, value, ctx)
        item = args[0] if args else Any
        return [_convert(item, v, ctx.index(i)) for i, v in enumerate(value)]
    if origin is tuple:
        return _convert_tuple(tp, args, value, ctx)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _mismatch(tp, value, ctx)
        key_tp, val_tp = args if args else (Any, Any)
        return {_convert(key_tp, k, ctx.key(str(k))): _convert(val_tp, v, ctx.key(str(k)))
                for k, v in value.items()}
    return _convert_scalar(tp, value, ctx)


def _convert_scalar(tp: Any, value: Any, ctx: _Ctx) -> Any:
    # bool is a subclass of int, so it is excluded explicitly for numbers.
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            return float(value)
    elif tp is str:
        ok = isinstance(value, str)
    elif tp is type(None) or tp is None:
        ok = value is None
    else:
        raise TypeError(f"{ctx.where}: {ctx.path}: unsupported annotation {tp!r}")
    if not ok:
        raise _mismatch(tp, value, ctx)
    return value


def _convert_union(tp: Any, args: tuple, value: Any, ctx: _Ctx) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:
        # Optional[X]: X's own error is more specific than a union summary.
        return _convert(options[0], value, ctx)
    for option in options:
        try:
            return _convert(option, value, ctx)
        except ConfigError:
            continue
    raise _mismatch(tp, value, ctx)


def _convert_tuple(tp: Any, args: tuple, value: Any, ctx: _Ctx) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise _mismatch(tp, value, ctx)
    if len(args) == 2 and args[1] is Ellipsis:
        item_types = [args[0]] * len(value)
    elif not args:
        item_types = [Any] * len(value)
    else:
        if len(value) != len(args):
            raise ctx.error(
                f"expected {_type_name(tp)} with {len(args)} items, got {len(value)} items")
        item_types = list(args)
    return tuple(_convert(t, v, ctx.index(i)) for i, (t, v) in enumerate(zip(item_types, value)))


def _build_dataclass(cls: type, value: Any, ctx: _Ctx) -> Any:
    if not isinstance(value, Mapping):
        raise ctx.error(f"expected a mapping for {cls.__name__}, got {_got(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise ctx.key(str(key)).error(
                f"unknown key; expected one of {', '.join(fields)}{suggestion}")
    kwargs = {}
    for name, field in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], ctx.key(name))
        elif (field.default is dataclasses.MISSING
              and field.default_factory is dataclasses.MISSING):
            raise ctx.key(name).error(
                f"missing required key (expected {_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        # Range checks in __post_init__ know the rule, not where it came from.
        raise ctx.error(str(exc)) from None
