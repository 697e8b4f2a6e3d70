"""Config dataclasses: plain-data round trips and command-line flags derived from their fields.

Every option exists once, as a dataclass field with a default and a ``help`` in its metadata;
the CLI flags, the saved run config and the checkpoint all come from that one definition.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from gankit.errors import ConfigError

C = TypeVar("C")


def option(default: Any, help: str, **metadata: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with a help text for the derived command-line flag."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={"help": help, **metadata})
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON- and ``weights_only``-safe dict of a config dataclass (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_dict(cls: type[C], values: dict[str, Any], *, source: str = "config") -> C:
    """Build ``cls`` from a dict, rejecting unknown keys and coercing lists back to tuples."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown option(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known options: {', '.join(sorted(names))}"
        )
    hints = get_type_hints(cls)
    kwargs = {k: _coerce(hints[k], v, k, source) for k, v in values.items()}
    for f in dataclasses.fields(cls):
        low = f.metadata.get("min")
        value = kwargs.get(f.name)
        if low is not None and value is not None and value < low:
            raise ConfigError(f"{source}: {f.name}={value!r} must be at least {low}")
    return cls(**kwargs)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(tp: Any, value: Any, name: str, source: str) -> Any:
    base, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: option {name!r} cannot be empty")
    origin = get_origin(base)
    if origin is Literal:
        choices = get_args(base)
        if value not in choices:
            raise ConfigError(
                f"{source}: {name}={value!r} is not one of {', '.join(map(str, choices))}"
            )
        return value
    if origin is tuple:
        args = get_args(base)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{source}: {name} takes {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, name, source) for a, v in zip(args, value, strict=True))
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base in (int, float, str, bool) and not isinstance(value, base):
        raise ConfigError(
            f"{source}: {name}={value!r} should be of type {base.__name__}"
        )
    return value


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    defaults: Any | None = None,
    *,
    skip: typing.Collection[str] = (),
) -> None:
    """Add one flag per field of ``cls``; flags default to ``argparse.SUPPRESS``.

    Only the options a user types end up in the parsed namespace, so they can be laid over
    model defaults and recipes without hiding them. ``defaults`` (an instance) is shown in help.
    """
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp, optional = _strip_optional(hints[f.name])
        shown = getattr(defaults, f.name) if defaults is not None else _field_default(f)
        help_text = f.metadata.get("help", "")
        help_text = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
        help_text = help_text.replace("%", "%%")
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": f.name}
        origin = get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            choices = get_args(tp)
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
        elif origin is tuple:
            args = get_args(tp)
            kwargs["nargs"] = len(args)
            kwargs["type"] = args[0]
            kwargs["metavar"] = f.name.upper()
        elif tp in (int, float, str):
            kwargs["type"] = _optional_parser(tp) if optional else tp
            kwargs["metavar"] = tp.__name__.upper()
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported option type {tp!r}")
        parser.add_argument(_flag(f.name), **kwargs)


def _optional_parser(tp: type) -> typing.Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "") else tp(text)

    parse.__name__ = tp.__name__
    return parse


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def pick(namespace: argparse.Namespace | dict[str, Any], cls: type) -> dict[str, Any]:
    """The values in ``namespace`` that are fields of ``cls`` (what the user actually typed)."""
    values = vars(namespace) if isinstance(namespace, argparse.Namespace) else namespace
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}
