"""Name -> component registries, so adding an agent, encoder or env family is adding a file."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import field
from typing import Generic, Iterator, TypeVar

from howsure.errors import UserError

T = TypeVar("T")


def suggest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """' (did you mean X?)' for close matches, or the full list of choices."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    shown = sorted(choices)
    more = "" if len(shown) <= 12 else f", ... {len(shown) - 12} more"
    return " (choices: " + ", ".join(shown[:12]) + more + ")"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str):
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UserError(f"unknown {self.kind} {name!r}{suggest(name, self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


_SECTIONS: dict[tuple, type] = {}


def component_section(name: str, members: dict[str, type], selector: str, default: str,
                      shared: type | None = None) -> type:
    """A frozen dataclass with a `selector` field plus one sub-section per registered component.
    `shared`: a frozen dataclass of settings several components read, whose fields (the selector
    among them) come first.

    Cached, so the same registry contents always give the same class (configs compare equal).
    """
    key = (name, selector, default, shared, tuple(members.items()))
    if key not in _SECTIONS:
        _SECTIONS[key] = _make_section(name, members, selector, default, shared)
    return _SECTIONS[key]


def _make_section(name: str, members: dict[str, type], selector: str, default: str, shared: type | None) -> type:
    fields_ = [] if shared is not None else [(selector, str, field(default=default))]
    fields_ += [(n, cls, field(default_factory=cls)) for n, cls in members.items()]
    return dataclasses.make_dataclass(name, fields_, bases=() if shared is None else (shared,), frozen=True)
