"""Options and N_k for a plan of several methods at once (a grid, or a table of the paper).

``--set key=value`` goes to every method that has ``key``, ``--set method.key=value`` to one
(:func:`split_overrides`); a bound runs at its own N_k whatever the plan says
(:func:`effective_n_labeled`). Pure functions of method classes: nothing here runs or imports
torch, so the grid planner and the report layer can both use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xlbench.errors import ConfigError, did_you_mean

ALL = -1  # = xlbench.tasks.ALL_LABELS (not imported here so that planning stays light)


def split_overrides(
    values: Mapping[str, Any], methods: Sequence[str], fields: Mapping[str, set[str]], flag: str = "--set"
) -> dict[str, dict[str, Any]]:
    """Spread ``--set`` values over methods: ``key=v`` goes to every method that has ``key``;
    ``method.key=v`` to that method only. A key no chosen method has is an error."""
    out: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for raw_key, value in values.items():
        method, dot, key = raw_key.partition(".")
        if dot:
            if method not in out:
                raise ConfigError(f"{flag} {raw_key}: {method!r} is not one of --methods ({', '.join(methods)})")
            if key not in fields[method]:
                known = ", ".join(sorted(fields[method])) or "none"
                raise ConfigError(f"{flag} {raw_key}: {method} has no option {key!r}; its options are: {known}")
            out[method][key] = value
            continue
        takers = [m for m in methods if raw_key in fields[m]]
        if not takers:
            every = sorted(set().union(*fields.values()))
            raise ConfigError(
                f"{flag} {raw_key}: none of {', '.join(methods)} has an option {raw_key!r}"
                f"{did_you_mean(raw_key, every)}"
            )
        for m in takers:
            out[m][raw_key] = value
    return out


def effective_n_labeled(method_cls: type, n_labeled: int) -> int:
    """The N_k a method really uses: the upper bound takes every label, a method without K_t none."""
    if getattr(method_cls, "uses_all_target_labels", False):
        return ALL
    if "target_labeled" not in getattr(method_cls, "needs", frozenset()):
        return 0
    return n_labeled
