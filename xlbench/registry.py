"""A small generic plugin registry over ``importlib.metadata`` entry points.

Built-ins are declared in pyproject.toml exactly as a third-party plugin declares its own,
so the core never imports a concrete method, encoder or corpus. Entry points are read once
(lazily) and objects are imported on first use only: a plugin that fails to import shows as
broken in listings and fails only when used. A name provided by two distributions is an error
that names both.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as md
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from xlbench.errors import ConfigError, unknown_name

T = TypeVar("T")

Status = Literal["ok", "not loaded", "broken", "conflict"]


@dataclass
class Registration:
    name: str
    target: str  # "module:attr"
    distribution: str  # the distribution that declared it ("<runtime>" when registered in code)
    version: str | None = None
    obj: Any = None
    error: str | None = None
    loaded: bool = False
    others: list[str] = field(default_factory=list)  # other distributions claiming the same name

    @property
    def status(self) -> Status:
        if self.others:
            return "conflict"
        if self.error:
            return "broken"
        return "ok" if self.loaded else "not loaded"


class Registry(Generic[T]):
    """Names -> lazily imported objects, read from one entry-point group."""

    def __init__(self, group: str, kind: str):
        self.group = group
        self.kind = kind
        self._lock = threading.Lock()
        self._regs: dict[str, Registration] | None = None

    # -- reading ---------------------------------------------------------------------------
    def _entry_points(self) -> Iterable[md.EntryPoint]:
        return md.entry_points(group=self.group)

    def _load_all(self) -> dict[str, Registration]:
        with self._lock:
            if self._regs is None:
                regs: dict[str, Registration] = {}
                seen: set[tuple[str, str, str]] = set()
                for ep in self._entry_points():
                    dist = ep.dist.name if ep.dist is not None else "<unknown>"
                    version = ep.dist.version if ep.dist is not None else None
                    key = (ep.name, ep.value, dist)
                    if key in seen:  # the same distribution seen twice on sys.path
                        continue
                    seen.add(key)
                    if ep.name in regs:
                        regs[ep.name].others.append(dist)
                        continue
                    regs[ep.name] = Registration(ep.name, ep.value, dist, version)
                self._regs = regs
            return self._regs

    def refresh(self) -> None:
        """Forget what was read, e.g. after installing a plugin in the same process."""
        with self._lock:
            self._regs = None

    def names(self) -> list[str]:
        return sorted(self._load_all())

    def __contains__(self, name: object) -> bool:
        return name in self._load_all()

    def registration(self, name: str) -> Registration:
        regs = self._load_all()
        if name not in regs:
            raise unknown_name(self.kind, name, regs)
        return regs[name]

    def get(self, name: str) -> T:
        """The object registered under ``name``, imported on first use."""
        reg = self.registration(name)
        if reg.others:
            raise ConfigError(
                f"{self.kind} {name!r} is registered twice: by {reg.distribution} and by "
                f"{', '.join(reg.others)}; uninstall one of them"
            )
        if not reg.loaded and reg.error is None:
            try:
                module_name, _, attr = reg.target.partition(":")
                obj: Any = importlib.import_module(module_name)
                for part in filter(None, attr.split(".")):
                    obj = getattr(obj, part)
                reg.obj, reg.loaded = obj, True
            except Exception as exc:  # a broken plugin must not break the harness
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                reg.error = last
        if reg.error is not None:
            raise ConfigError(f"{self.kind} {name!r} (from {reg.distribution}) failed to load: {reg.error}")
        return reg.obj

    def try_load_all(self) -> list[Registration]:
        """Load every registration (for listings); failures are recorded, not raised."""
        out = []
        for name in self.names():
            with contextlib.suppress(ConfigError):
                self.get(name)
            out.append(self._load_all()[name])
        return out

    # -- writing (tests, notebooks) ----------------------------------------------------------
    def register(self, name: str, obj: Any, distribution: str = "<runtime>") -> None:
        """Register an object directly, as a plugin's entry point would."""
        regs = self._load_all()
        with self._lock:
            if name in regs:
                regs[name].others.append(distribution)
                return
            target = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
            regs[name] = Registration(name, target, distribution, None, obj=obj, loaded=True)

    def unregister(self, name: str) -> None:
        with self._lock:
            if self._regs is not None:
                self._regs.pop(name, None)
