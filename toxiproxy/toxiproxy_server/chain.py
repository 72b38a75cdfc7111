"""A proxy's toxics: one ordered chain per direction (Toxiproxy's ToxicCollection).

Invariants: toxic names are unique across both chains; a chain lists toxics in
the order they were added; every live link of the proxy has exactly the
toxics of its direction's chain attached, in the same order. Changes are
pushed to the links through the ``links`` callable given by the proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .errors import TOXIC_ALREADY_EXISTS, TOXIC_NOT_FOUND
from .link import Link
from .toxics import Direction, Toxic, apply_update, parse_new_toxic


class ToxicChain:
    """The toxics of one proxy and the rules for adding, updating and removing them."""

    def __init__(self, links: Callable[[Direction], Iterable[Link]]) -> None:
        self._links = links
        self.chains: dict[Direction, list[Toxic]] = {d: [] for d in Direction}

    def all(self) -> list[Toxic]:
        """All toxics, upstream chain first, as Toxiproxy lists them."""
        return [toxic for direction in Direction for toxic in self.chains[direction]]

    def snapshot(self) -> dict[Direction, list[Toxic]]:
        """Copies of both chains, for attaching to a new connection."""
        return {direction: list(toxics) for direction, toxics in self.chains.items()}

    def find(self, name: str) -> Toxic:
        """Return the toxic called ``name``; raise ``toxic not found`` (404)."""
        for toxic in self.all():
            if toxic.name == name:
                return toxic
        raise TOXIC_NOT_FOUND

    def add(self, body: Any) -> Toxic:
        """Create a toxic from a request body and attach it to every live link."""
        toxic = parse_new_toxic(body)
        if any(existing.name == toxic.name for existing in self.all()):
            raise TOXIC_ALREADY_EXISTS
        self.chains[toxic.direction].append(toxic)
        for link in self._links(toxic.direction):
            link.attach(toxic)
        return toxic

    def update(self, name: str, body: Any) -> Toxic:
        """Change a toxic's attributes/toxicity and restart it on every live link."""
        toxic = self.find(name)
        toxic.attributes, toxic.toxicity = apply_update(toxic, body)
        for link in self._links(toxic.direction):
            link.reattach(toxic)
        return toxic

    def remove(self, name: str) -> None:
        """Remove a toxic from its chain and from every live link."""
        toxic = self.find(name)
        self.chains[toxic.direction].remove(toxic)
        for link in self._links(toxic.direction):
            link.detach(toxic)

    def clear(self) -> None:
        """Remove every toxic (POST /reset)."""
        for toxic in self.all():
            self.remove(toxic.name)
