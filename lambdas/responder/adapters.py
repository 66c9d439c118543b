"""A task's AWS adapters, each made on first use from a zero-argument factory.

The handler (the wiring: `handlers/`, with the clients of `responder.aws.clients.Clients`) passes one factory per
adapter; the domain reads ``adapters.<name>`` and never imports `responder.aws` (tests/unit/test_layers.py).
Lazy on purpose: an instance that is gone or protected costs one EC2 client, not six, and a role is assumed only
when its side is needed.
"""
from __future__ import annotations

from typing import Any, Callable


class Adapters:
    def __init__(self, **factories: Callable[[], Any]):
        self._factories = factories
        self._made: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        factories = self.__dict__.get("_factories") or {}
        if name not in factories:
            raise AttributeError(f"no adapter {name!r} (have: {', '.join(sorted(factories))})")
        made = self.__dict__["_made"]
        if name not in made:
            made[name] = factories[name]()
        return made[name]
