"""Named registries: one registration pattern for every kind of model (F_missing models, rotation-curve models).

A registry maps names to objects that carry a ``name``. Registering returns the object, so a module-level
``MODEL = register(Model(...))`` declares and registers in one line; the command line takes its choices from
:meth:`Registry.names`, so a model registered before the parser is built is a valid choice everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Objects of one kind by name, in registration order."""

    def __init__(self, kind: str, cls: type):
        self.kind = kind  # what the objects are, for messages ("curve model")
        self.cls = cls
        self._items: dict[str, T] = {}

    def register(self, item: T, *, overwrite: bool = False) -> T:
        """Adds ``item`` under ``item.name`` and returns it; a second item of the same name needs ``overwrite``."""
        if not isinstance(item, self.cls):
            raise TypeError(f"a {self.kind} must be a {self.cls.__name__}, got {type(item).__name__}")
        if item.name in self._items and not overwrite:
            raise ValueError(f"a {self.kind} named {item.name!r} is already registered (pass overwrite=True to "
                             "replace it)")
        self._items[item.name] = item
        return item

    def get(self, name: str | T) -> T:
        """The item named ``name`` (an item itself is returned as it is)."""
        if isinstance(name, self.cls):
            return name
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {', '.join(self._items)}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
