"""The one dict -> dataclass codec of every saved or given config: model parts (``alfia.model``), training settings
(``alfia.training.config``) and the text encoder (``alfia.text.encoder``). Free of torch, so that reading a text
encoder does not load it.
"""

from __future__ import annotations

import dataclasses
import types
import typing

from alfia.errors import AlfiaError


def config_from_dict(cls, data: dict, where: str, remedy: str = "save it again"):
    """Build dataclass ``cls`` from ``data``: unknown or missing fields and wrong types are an AlfiaError (ending
    with ``remedy``). A field whose type is a dataclass (or an optional one) is built from its nested dict the same
    way. The one codec of every saved config: model parts, training settings, the text encoder."""
    if not isinstance(data, dict):
        raise AlfiaError(f"{where}: {cls.__name__} must be an object, got {type(data).__name__}; {remedy}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise AlfiaError(f"{where}: unknown {cls.__name__} field(s) {', '.join(unknown)}; it was written by "
                         f"another ALFIA version, {remedy}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        nested = nested_dataclass(hints[name])
        if nested is not None and isinstance(value, dict):
            value = config_from_dict(nested, value, f"{where} [{name}]", remedy)
        if not _type_ok(value, hints[name]):
            raise AlfiaError(f"{where}: {cls.__name__}.{name} = {value!r} has the wrong type "
                             f"(expected {hints[name]}); {remedy}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise AlfiaError(f"{where}: incomplete {cls.__name__} ({exc}); {remedy}") from None


def nested_dataclass(hint):
    """The dataclass type of a field typed ``X`` or ``X | None``, else None."""
    candidates = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return next((h for h in candidates if dataclasses.is_dataclass(h)), None)


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(value, tuple) and all(_type_ok(v, args[0]) for v in value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def flatten(data: dict, prefix: str = "") -> dict:
    """``{"model": {"lora": {"r": 8}}}`` -> ``{"model.lora.r": 8}``: nested settings as their paths."""
    out = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out
