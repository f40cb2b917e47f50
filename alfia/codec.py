"""Configs: the one dict <-> dataclass codec of every saved or given config (model parts, training settings, the
text encoder) and :class:`Config`, the base of every model and training config. Free of torch, so that reading a
text encoder does not load it.

A config is a dataclass whose fields are declared with :func:`setting`: a default, a help text, the command-line
flag (if any) and a constraint (:class:`Interval`, :class:`OneOf`), in the spirit of scikit-learn's declared
parameter constraints; :meth:`Config.validate` checks them all, nested configs included, and names a bad one by its
path (``model.lora.r must be at least 1``)::

    @dataclass
    class LoraSettings(Config):
        r: int = setting(16, help="LoRA rank", flag="--lora-r", check=Interval(int, 1))
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any

from alfia.errors import AlfiaError, SettingError


# -- declared constraints ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) between ``low`` and ``high`` (None: unbounded); ``closed``: which ends
    belong to the interval ("both", "left", "right", "neither"). Numbers are checked as scikit-learn does, by
    ``numbers.Integral`` / ``numbers.Real`` (``np.int64(3)`` is a whole number), and a bool is never one."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def problem(self, value) -> str | None:
        if self.kind is int and not is_integral(value):
            return f"must be a whole number, got {value!r}"
        if self.kind is float and not is_real(value):
            return f"must be a number, got {value!r}"
        value = plain(value)   # np.int64(0) is shown as 0
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return None if low_ok and high_ok else f"must be {self.describe()}, got {value!r}"

    def describe(self) -> str:
        if self.high is None and self.low == 0:
            return "zero or more" if self.closed in ("both", "left") else "positive"
        if self.high is None:
            return f"at least {self.low}" if self.closed in ("both", "left") else f"above {self.low}"
        if self.low is None:
            return f"at most {self.high}" if self.closed in ("both", "right") else f"below {self.high}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"in {left}{self.low}, {self.high}{right}"


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``."""

    choices: tuple

    def problem(self, value) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(map(str, self.choices))}, got {value!r}"


def is_integral(value) -> bool:
    """A whole number of any kind (``3``, ``np.int64(3)``), never a bool (numpy's bool is no number at all)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number of any kind (``0.1``, ``3``, ``np.float32(0.1)``), never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def plain(value):
    """A JSON-ready Python value: a numpy (or other) whole number as an ``int``, a real number as a ``float``,
    tuples element by element; a built-in value as it is."""
    if type(value) in (bool, int, float, str) or value is None:
        return value
    if is_integral(value):
        return int(value)
    if is_real(value):
        return float(value)
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


POSITIVE = Interval(int, 1)                               # a count: 1, 2, ...
POSITIVE_NUMBER = Interval(float, 0, closed="neither")    # a rate, a strength: > 0
NON_NEGATIVE = Interval(float, 0)
SHARE = Interval(float, 0, 1)                             # [0, 1]
DROPOUT = Interval(float, 0, 1, closed="left")            # [0, 1)


def setting(default: Any = dataclasses.MISSING, *, help: str, flag: str | None = None, check=None,
            parse: str | None = None, default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field: its default, what it means (``help``, shown by ``alfia train --help``), the command-line
    flag that sets it (``--lora-r``; None: no flag), its constraint, and ``parse``: how the command line reads a
    value that is not a plain number, word or list (e.g. "size" for 8G; the CLI knows the parsers)."""
    metadata = {"help": help, "flag": flag, "check": check, "parse": parse}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Config:
    """The base of every model and training config (a dataclass): ``to_dict`` / ``from_dict`` once, and
    ``validate`` of the declared constraints, nested configs included. A subclass adds rules that tie several fields
    together in :meth:`check`."""

    def to_dict(self) -> dict:
        """Plain JSON-ready values: nested configs as dicts, tuples as lists."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(plain(value))
            else:
                value = plain(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None, remedy: str = "save it again"):
        return config_from_dict(cls, data, where or f"{cls.__name__} settings", remedy)

    def validate(self, path: str = ""):
        """Check every declared constraint (a None value stands for "unset" or "off" and is not checked) and the
        subclass's :meth:`check`; a violation is a SettingError naming the setting's path. Returns the config."""
        for f in dataclasses.fields(self):
            value, name = getattr(self, f.name), path + f.name
            if isinstance(value, Config):
                value.validate(name + ".")
                continue
            check = f.metadata.get("check")
            problem = None if value is None or check is None else check.problem(value)
            if problem:
                raise SettingError(name, problem)
        self.check(path)
        return self

    def check(self, path: str) -> None:
        """Rules that tie several fields together (raise ``SettingError(path + field, problem)``)."""

    def require(self, *names: str, path: str = ""):
        """The fields ``names`` must be set (not None): a part built on its own has no backbone to take them from.
        Returns the config."""
        for name in names:
            if getattr(self, name) is None:
                raise SettingError(path + name, "must be set")
        return self


def settings_of(cls, prefix: str = ""):
    """``(path, field, type)`` of every setting of config class ``cls``, nested configs walked (their own field too);
    ``type`` is the field's plain type (``int`` for ``int | None``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path, hint = prefix + f.name, hints[f.name]
        plain = [h for h in typing.get_args(hint) if h is not type(None)] if typing.get_origin(hint) in (
            typing.Union, types.UnionType) else [hint]
        yield path, f, typing.get_origin(plain[0]) or plain[0]
        nested = nested_dataclass(hint)
        if nested is not None:
            yield from settings_of(nested, path + ".")


def config_from_dict(cls, data: dict, where: str, remedy: str = "save it again"):
    """Build dataclass ``cls`` from ``data``: unknown or missing fields and wrong types are an AlfiaError (ending
    with ``remedy``). A field whose type is a dataclass (or an optional one) is built from its nested dict the same
    way. The one codec of every saved config: model parts, training settings, the text encoder. Numbers are typed
    as ``numbers.Integral`` / ``numbers.Real`` (bools refused where a number is expected) and kept as plain Python
    numbers (``np.int64(3)`` becomes ``3``)."""
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
        values[name] = plain(value)
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
        return is_real(value)
    if hint is int:
        return is_integral(value)
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
