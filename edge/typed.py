"""Plain-data -> dataclass validation with key-path errors, and the JSON Schema of the same dataclasses.

A field's constraints live in its metadata (see `spec`): description, choices, minimum, exclusive_minimum,
maximum, pattern (+ pattern_hint, the pattern in words for the error). Supported annotations: str, int, float,
bool, dict (any JSON object), a dataclass, Optional[T], List[T], Tuple[T, ...] (built as a tuple) and a union of
scalars such as Union[str, int] (the value's own type; a pattern applies to strings, bounds to numbers, as in
JSON Schema).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from typing import Any, Collection, Mapping, Optional, Sequence

MISSING = dataclasses.MISSING
BAD = object()  # what an invalid value becomes while collecting every problem


class ValidationError(ValueError):
    """One problem at one key path: str() is `path: problem`."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path or '(top level)'}: {problem}")
        self.path, self.problem = path, problem


def spec(description: str, default: Any = MISSING, *, default_factory: Any = MISSING, choices: Collection = (),
         minimum: Optional[float] = None, exclusive_minimum: Optional[float] = None,
         maximum: Optional[float] = None, pattern: Optional[str] = None, pattern_hint: str = "") -> Any:
    """A dataclass field with a description and constraints for both validation and the schema.

    A dict passed as `choices` stays live (a registry: its keys are the choices when a value is checked).
    """
    meta = {"description": description, "choices": choices if isinstance(choices, dict) else tuple(choices),
            "minimum": minimum, "exclusive_minimum": exclusive_minimum, "maximum": maximum, "pattern": pattern,
            "pattern_hint": pattern_hint}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def build(cls: type, data: Any, path: str = "") -> Any:
    """A `cls` instance from nested dicts/lists, or ValidationError naming the first bad key."""
    errors: list = []
    result = collect(cls, data, errors, path)
    if errors:
        raise errors[0]
    return result


def collect(cls: type, data: Any, errors: list, path: str = "") -> Any:
    """A `cls` instance with every problem (not only the first) appended to `errors` as ValidationError; a bad
    value is replaced by its default so the rest can still be checked (None when a required one is bad)."""
    if not isinstance(data, dict):
        errors.append(ValidationError(path, f"must be a mapping, got {_show(data)}"))
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (expected {_alternatives(sorted(fields), 'or')})"
            errors.append(ValidationError(_join(path, str(key)), f"unknown key{hint}"))
    values, complete = {}, True
    for name, f in fields.items():
        where, required = _join(path, name), f.default is MISSING and f.default_factory is MISSING
        if name in data:
            value = _value(hints[name], data[name], where, f.metadata, errors)
            if value is not BAD:
                values[name] = value
            complete = complete and not (required and value is BAD)
        elif required:
            errors.append(ValidationError(where, "is required"))
            complete = False
    return cls(**values) if complete else None


def field_of(cls: type, path: str) -> tuple:
    """(annotation, dataclasses.Field) of a dotted key path such as `thresholds.conf`, through nested dataclasses."""
    head, _, rest = path.partition(".")
    f = next(f for f in dataclasses.fields(cls) if f.name == head)
    hint = typing.get_type_hints(cls)[head]
    if not rest:
        return hint, f
    inner = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    inner = typing.get_args(inner)[0] if typing.get_origin(inner) in (list, typing.List) else inner
    return field_of(inner, rest)


def scalar_type(hint: Any) -> type:
    """str/int/float/bool behind Optional[...] or List[...] (the first of a union of scalars)."""
    while typing.get_origin(hint) in (typing.Union, list, typing.List):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def scalar_types(hint: Any) -> tuple:
    """The scalar types a value may have: (str, int) for Optional[Union[str, int]], (float,) for Optional[float]."""
    if typing.get_origin(hint) is typing.Union:
        return tuple(a for a in typing.get_args(hint) if a is not type(None))
    return (scalar_type(hint),)


def _value(hint: Any, value: Any, path: str, meta: Mapping, errors: list) -> Any:
    """Check and convert one value against its annotation and constraints; BAD (problems in `errors`) if invalid."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None:
            return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) > 1:  # a union of scalars: the value's own type
            kind = next((k for k in kinds if isinstance(value, k) and not (k is int and isinstance(value, bool))),
                        None)
            if kind is None:
                names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
                errors.append(ValidationError(path, f"must be {_alternatives([names[k] for k in kinds], 'or')}, "
                                                    f"got {_show(value)}"))
                return BAD
            return _value(kind, value, path, meta, errors)
        return _value(kinds[0], value, path, meta, errors)
    if origin in (list, tuple):
        if not isinstance(value, list):
            errors.append(ValidationError(path, f"must be a list, got {_show(value)}"))
            return BAD
        items = [_value(args[0], item, f"{path}[{i}]", meta, errors) for i, item in enumerate(value)]
        if any(item is BAD for item in items):
            return BAD
        return items if origin is list else tuple(items)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        built = collect(hint, value, errors, path)
        return BAD if built is None else built
    if hint is dict:
        if not isinstance(value, dict):
            errors.append(ValidationError(path, f"must be a mapping, got {_show(value)}"))
            return BAD
        return value
    try:
        value = _scalar(hint, value, path)
        _check(value, path, meta)
    except ValidationError as e:
        errors.append(e)
        return BAD
    return value


def _scalar(hint: type, value: Any, path: str) -> Any:
    """str/int/float/bool, strictly (a YAML `no` is not a string, `true` is not a number)."""
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(path, f"must be a finite number, got {value}")
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
        raise ValidationError(path, f"must be {names[hint]}, got {_show(value)}")
    return value


def _check(value: Any, path: str, meta: Mapping) -> None:
    """Choices, bounds and pattern from the field's metadata."""
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ValidationError(path, f"must be {_alternatives(choices, 'or')}, got {_show(value)}")
    number = isinstance(value, (int, float))  # bounds apply to numbers and a pattern to strings (JSON Schema)
    if number and meta.get("minimum") is not None and value < meta["minimum"]:
        raise ValidationError(path, f"must be at least {meta['minimum']}, got {_show(value)}")
    if number and meta.get("exclusive_minimum") is not None and value <= meta["exclusive_minimum"]:
        raise ValidationError(path, f"must be greater than {meta['exclusive_minimum']}, got {_show(value)}")
    if number and meta.get("maximum") is not None and value > meta["maximum"]:
        raise ValidationError(path, f"must be at most {meta['maximum']}, got {_show(value)}")
    if isinstance(value, str) and meta.get("pattern") and not re.fullmatch(meta["pattern"], value):
        wanted = meta.get("pattern_hint") or f"match {meta['pattern']}"
        raise ValidationError(path, f"must {wanted}, got {_show(value)}")


def schema(cls: type) -> dict:
    """The JSON Schema (draft-07) of a dataclass: closed objects, required keys, defaults."""
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _type_schema(hints[f.name])
        meta = f.metadata
        target = prop.get("items", prop)
        if meta.get("choices"):
            target["enum"] = list(meta["choices"]) + ([None] if "null" in _types(target) else [])
        for key, word in (("minimum", "minimum"), ("exclusive_minimum", "exclusiveMinimum"), ("maximum", "maximum")):
            if meta.get(key) is not None:
                target[word] = meta[key]
        if meta.get("pattern"):
            target["pattern"] = f"^(?:{meta['pattern']})$"
        if f.default is not MISSING and f.default is not None:
            prop["default"] = f.default
        if f.default is MISSING and f.default_factory is MISSING:
            required.append(f.name)
        properties[f.name] = {"description": meta.get("description", ""), **prop}
    out = {"type": "object", "description": (cls.__doc__ or "").strip(), "additionalProperties": False,
           "properties": properties}
    if required:
        out["required"] = required
    return out


def _type_schema(hint: Any) -> dict:
    """The schema fragment of one annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        kinds = [a for a in args if a is not type(None)]
        inner = _type_schema(kinds[0]) if len(kinds) == 1 else {"type": [_type_schema(k)["type"] for k in kinds]}
        if type(None) not in args:
            return inner
        if "type" in inner:
            return {**inner, "type": _types(inner) + ["null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, tuple):
        return {"type": "array", "items": _type_schema(args[0])}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return schema(hint)
    return {"type": {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}[hint]}


def _types(prop: dict) -> list:
    """The JSON types a fragment allows."""
    kind = prop.get("type", [])
    return kind if isinstance(kind, list) else [kind]


def _join(path: str, key: str) -> str:
    """`a.b` + `c` -> `a.b.c`."""
    return f"{path}.{key}" if path else key


def _alternatives(items: Sequence, word: str) -> str:
    """[0, 1, 2] -> `0, 1 or 2`."""
    shown = [str(i) for i in items]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} {word} {shown[-1]}"


def _show(value: Any) -> str:
    """A value as the config file would spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value) if isinstance(value, str) else str(value)
