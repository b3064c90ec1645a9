"""Name -> object registries (tasks, backends, metrics...) instead of if-chains.

Entries may be registered lazily as "module:attribute" strings so that listing or choosing a name never
imports torch; the object is imported the first time it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mentalens.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A case-insensitive mapping of names to objects or lazy "module:attr" references."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._names: dict[str, str] = {}  # lower-case alias -> canonical name

    def register(self, name: str, obj: T | str | None = None, *, aliases: tuple[str, ...] = ()):
        """Register obj (or use as a decorator). A string obj is a lazy "module:attr" reference."""

        def _add(o: T | str) -> T | str:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = o
            for alias in (name, *aliases):
                self._names[alias.lower()] = name
            return o

        if obj is None:
            return _add
        _add(obj)
        return obj

    def canonical(self, name: str) -> str:
        """The registered spelling of name (matching is case-insensitive and accepts aliases)."""
        try:
            return self._names[str(name).lower()]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def get(self, name: str) -> T:
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[key] = entry
        return entry  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self._entries:
            yield name, self.get(name)

    def build(self, name: str, *args, **kwargs):
        """Look name up and call it (for registries of classes or factories)."""
        factory: Callable = self.get(name)  # type: ignore[assignment]
        return factory(*args, **kwargs)
