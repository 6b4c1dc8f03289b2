"""Every graph a show can switch to, each loaded once, guarded, and kept."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from livedream.errors import UserError
from livedream.runtime.guard import GuardedModel
from livedream.runtime.model import LoadedModel

log = logging.getLogger(__name__)

ModelLoader = Callable[[str], LoadedModel]
"""`load(name)`: the graph `name`, loaded (a missing model raises `UserError`)."""


class ModelSet:
    """The running graph (`guard`: a `GuardedModel`, whose `guarded` is the `LoadedModel`) and
    the others loaded so far, by name.

    A change of `Params.model` switches with `switch(name)`; presets' models are loaded
    at start with `preload`, so no switch loads a graph mid-show.
    """

    def __init__(self, name: str, first: GuardedModel, load: ModelLoader | None = None) -> None:
        self.name = name
        self.guard = first
        self._load = load
        self._loaded = {name: first}

    def preload(self, names: Iterable[str]) -> None:
        """Load the graphs `names` now; a missing model raises `UserError`."""
        for name in sorted(names):
            self._named(name)

    def switch(self, name: str) -> bool:
        """Make graph `name` the current one (loaded once, then reused); on failure, warn,
        keep the running one and return False."""
        try:
            guard = self._named(name)
        except UserError as error:
            log.warning("model %r not loaded: %s; keeping %r", name, error, self.name)
            return False
        self.guard, self.name = guard, name
        self.announce()
        return True

    def announce(self) -> None:
        """Log where the current graph dreams, and why there."""
        log.info("model %s on %s: %s", self.name, self.guard.provider, self.guard.guarded.placement)

    @property
    def frames_skipped(self) -> int:
        """Frames not dreamed because of an engine fault, over every graph loaded."""
        return sum(guard.frames_skipped for guard in self._loaded.values())

    @property
    def restarts(self) -> int:
        """Sessions re-created after repeated faults, over every graph loaded."""
        return sum(guard.restarts for guard in self._loaded.values())

    def _named(self, name: str) -> GuardedModel:
        if name not in self._loaded:
            if self._load is None:
                raise UserError("this app cannot switch models while running")
            load = self._load
            self._loaded[name] = GuardedModel(lambda: load(name))
        return self._loaded[name]
