"""Validation helpers used by the config dataclasses' ``__post_init__``; messages name the option and a fix."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from .errors import ModelConfigError


def _default(config: Any, name: str) -> Any:
    return next(f.default for f in fields(config) if f.name == name)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive(config: Any, *names: str) -> None:
    """Each named option must be an integer above zero."""
    for name in names:
        value = getattr(config, name)
        if not _whole(value) or value <= 0:
            raise ModelConfigError(f"{config.model} option {name} must be a positive integer, not {value!r}; "
                                   f"use e.g. {_default(config, name)}")


def check_fraction(config: Any, name: str) -> None:
    """A dropout-like option: a number in [0, 1)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ModelConfigError(f"{config.model} option {name} must be a number in [0, 1), not {value!r}; "
                               f"use e.g. {_default(config, name)}")


def int_tuple(config: Any, name: str) -> tuple[int, ...]:
    """A non-empty sequence of positive integers as a tuple (JSON configs give lists)."""
    value = getattr(config, name)
    items = tuple(value) if isinstance(value, (list, tuple)) else ()
    if not items or not all(_whole(v) and v > 0 for v in items):
        raise ModelConfigError(f"{config.model} option {name} must be a non-empty list of positive integers, not {value!r}; "
                               f"use e.g. {list(_default(config, name))}")
    return items


def check_outputs(config: Any) -> None:
    """``n_outputs`` is None (one logit per trait and level) or a positive integer."""
    value = config.n_outputs
    if value is not None and (not _whole(value) or value <= 0):
        raise ModelConfigError(f"{config.model} option n_outputs must be a positive integer, not {value!r}; "
                               "leave it unset for one logit per trait and level")


def check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    """An option that must be one of a few names."""
    value = getattr(config, name)
    if value not in choices:
        raise ModelConfigError(f"{config.model} option {name} must be one of {', '.join(choices)}, not {value!r}")


def check_target_levels(config: Any) -> None:
    """``target_levels``: None (``n_traits`` targets of ``n_levels`` each) or one entry per target, K >= 2 ordered
    levels or 0 for a continuous score; when given it sets ``n_traits`` and ``n_levels`` (the widest target)."""
    value = config.target_levels
    if value is None:
        return
    items = tuple(value) if isinstance(value, (list, tuple)) else ()
    if not items or not all(_whole(v) and (v == 0 or v >= 2) for v in items):
        raise ModelConfigError(f"{config.model} option target_levels must list, per target, a level count >= 2 or 0 "
                               f"(continuous), not {value!r}; leave it unset for {config.n_traits} targets of "
                               f"{config.n_levels} levels")
    if config.output == "score":
        raise ModelConfigError(f"{config.model} option output 'score' predicts one score per trait in [0, 1] and "
                               "takes no target_levels; use softmax or corn with target_levels")
    config.target_levels = items
    config.n_traits = len(items)
    config.n_levels = max(max(items), 1)


def check_kernel_features(config: Any) -> None:
    """``kernel_features``: 0, or a positive multiple of the number of tap spacings (each spacing gets an equal share);
    ``kernel_taps``: one of ``KERNEL_TAP_READS``."""
    from .wide import KERNEL_DILATIONS, KERNEL_FEATURES, KERNEL_TAP_READS

    check_choice(config, "kernel_taps", KERNEL_TAP_READS)

    value = config.kernel_features
    if not _whole(value) or value < 0 or value % len(KERNEL_DILATIONS):
        raise ModelConfigError(f"{config.model} option kernel_features must be 0 or a positive multiple of "
                               f"{len(KERNEL_DILATIONS)} (one share per tap spacing), not {value!r}; "
                               f"use e.g. {KERNEL_FEATURES}")
