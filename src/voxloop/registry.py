"""A name -> factory registry that builds each engine once per process, on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from voxloop.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Backends register a factory under a name; `get` builds lazily and caches."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._instances: dict[tuple[str, Hashable], T] = {}
        self._lock = threading.RLock()  # a backend may build on another (stt "auto")

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: make `factory(*args)` buildable as `name`."""

        def add(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        """Registered backend names, sorted."""
        return sorted(self._factories)

    def built(self, name: str, *args: Hashable) -> bool:
        """Whether `name`'s instance for `args` has been built (a model loaded)."""
        with self._lock:
            return (name, args) in self._instances

    def get(self, name: str, *args: Hashable) -> T:
        """The shared instance built by `name`'s factory from `args` (built on first call)."""
        if name not in self._factories:
            known = ", ".join(self.names())
            raise ConfigError(f"Unknown {self.kind} '{name}'. Choose one of: {known}.")
        key = (name, args)
        with self._lock:
            if key not in self._instances:
                self._instances[key] = self._factories[name](*args)
            return self._instances[key]
