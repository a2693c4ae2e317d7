"""The cache model's string patterns, checked only where bytes are not known as healthcache's own.

A field typed ``Annotated[str, Pattern(regex)]`` is a plain ``str`` to msgspec, so
the model's own decoder does not run the regex: on a 10k-activity cache the
patterns were a third of the typed parse (about 45 of 135 ms), paid on every
load of a file healthcache had already validated when it wrote it (its hash is
the one the index recorded).  Everything else the decoder checks as before.

Bytes that are not proven that way (a file changed outside healthcache, a
backup, an activity built in code, an importer's record) are checked against
``checker(cls)``: a Struct built from ``cls`` that keeps only the fields that
hold a pattern, each with its regex as a ``msgspec.Meta``, and skips the rest
unparsed (``msgspec.Raw``), so the check costs less than a second full parse.
``strict(cls)`` keeps every field: the full compiled schema (``schema.json``).
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Annotated, Any, Union

import msgspec


class Pattern:
    """The regex a string field must match; ignored by msgspec, applied by ``checker`` and ``strict``."""

    __slots__ = ("regex",)

    def __init__(self, regex: str) -> None:
        self.regex = regex

    def __repr__(self) -> str:
        return f"Pattern({self.regex!r})"


@functools.cache
def checker(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """``cls`` reduced to its patterns (see the module docstring); unknown fields pass, as the model's
    own decode has refused them already."""
    built = _twin(cls, keep_all=False)
    assert built is not None, f"{cls.__name__} holds no pattern"
    return built


@functools.cache
def strict(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """``cls`` with every field and its patterns as ``msgspec.Meta``: the whole schema in one type."""
    built = _twin(cls, keep_all=True)
    assert built is not None
    return built


_field: Any = msgspec.field  # given both a default and a factory, one of them msgspec.NODEFAULT


def _twin(cls: type[msgspec.Struct], *, keep_all: bool) -> type[msgspec.Struct] | None:
    fields: list[tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        kind = _translate(f.type, keep_all=keep_all)
        if kind is None:
            continue
        if keep_all:
            default = _field(default=f.default, default_factory=f.default_factory, name=f.encode_name)
        else:
            default = _field(default=None, name=f.encode_name)  # presence is the model's check
        fields.append((f.name, kind, default))
    if not fields:
        return None
    config = cls.__struct_config__
    twin = msgspec.defstruct(
        cls.__name__,
        fields,
        kw_only=True,
        forbid_unknown_fields=config.forbid_unknown_fields if keep_all else False,
        omit_defaults=config.omit_defaults,
        module=cls.__module__,
    )
    twin.__doc__ = cls.__doc__
    return twin


def _translate(kind: Any, *, keep_all: bool) -> Any:
    """``kind`` with each ``Pattern`` made a ``msgspec.Meta``; None (unless ``keep_all``) when it holds none."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        inner = _translate(args[0], keep_all=keep_all)
        patterns = [msgspec.Meta(pattern=m.regex) for m in args[1:] if isinstance(m, Pattern)]
        if keep_all:
            metas = [m for m in args[1:] if isinstance(m, msgspec.Meta)]
            return Annotated[(inner, *patterns, *metas)] if patterns or metas else inner
        if not patterns:
            return inner
        return Annotated[(args[0] if inner is None else inner, *patterns)]
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return _twin(kind, keep_all=keep_all)
    if origin in (list, dict) or origin in (Union, types.UnionType):
        parts = [_translate(a, keep_all=keep_all) for a in args]
        if not keep_all and all(p is None for p in parts):
            return None
        if origin in (Union, types.UnionType):
            # An optional part: None stays None; a part without patterns may be anything.
            parts = [
                type(None) if a is type(None) else (p if p is not None else msgspec.Raw)
                for a, p in zip(args, parts, strict=True)
            ]
            return Union[tuple(parts)]  # noqa: UP007 (built from a tuple)
        if not keep_all:  # a part without patterns is skipped unparsed (a dict key stays a string)
            parts = [
                (str if i == 0 and origin is dict else msgspec.Raw) if p is None else p for i, p in enumerate(parts)
            ]
        generic: Any = origin
        return generic[tuple(parts)]
    return kind if keep_all else None


class CheckedDecoder[T: msgspec.Struct]:
    """A JSON decoder of ``cls`` that checks its patterns too: for bytes not known as healthcache's own.
    Raises ``msgspec.ValidationError`` as one decoder with the patterns in the type would."""

    def __init__(self, cls: type[T]) -> None:
        self._cls = cls
        self._decoder = msgspec.json.Decoder(cls)

    def decode(self, data: bytes | memoryview) -> T:
        value = self._decoder.decode(data)
        check_patterns(data, self._cls)
        return value


def check_patterns(data: bytes | memoryview, cls: type[msgspec.Struct]) -> None:
    """Check the patterns of ``cls`` (and only them) in JSON ``data``; ``msgspec.ValidationError`` if one fails."""
    _pattern_decoder(cls).decode(data)


@functools.cache
def _pattern_decoder(cls: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(checker(cls))


def convert_checked[T: msgspec.Struct](value: Any, cls: type[T]) -> T:
    """``msgspec.convert(value, cls)`` with the patterns checked too."""
    msgspec.convert(value, strict(cls))
    return msgspec.convert(value, cls)
