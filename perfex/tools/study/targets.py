"""The targets of a deploy per-clip CSV, read off its columns (``perfex.infer.clip_rows.clip_columns``' layout), and
a ``--targets`` choice among them; shared by user_study.py and au_analysis.py."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...core.errors import PerfexError
from ...core.schema import BIG_FIVE, CONTINUOUS, Target, Targets, parse_targets
from ...infer.clip_rows import IDENTITY_COLUMNS

_PROBABILITY = re.compile(r"^p_(.+)_(\d+)$")


def deploy_targets(columns: Sequence[str]) -> Targets | None:
    """What a deploy CSV predicts: a level target ``NAME`` per ``p_NAME_k`` columns (K of them), a continuous one per
    other value column; None when ``columns`` lack the deploy's identity columns (not a deploy CSV) or name no target."""
    columns = [str(c).strip() for c in columns]
    if not set(IDENTITY_COLUMNS) <= set(columns):
        return None
    levels: dict[str, int] = {}
    for column in columns:
        if match := _PROBABILITY.match(column):
            levels[match[1]] = max(levels.get(match[1], 0), int(match[2]) + 1)
    derived = {f"{name}_score" for name in levels} | {f"p_{name}_{k}" for name, top in levels.items() for k in range(top)}
    names = [c for c in columns if c not in IDENTITY_COLUMNS and c not in derived]
    return Targets(tuple(Target(name, levels.get(name, CONTINUOUS)) for name in names)) if names else None


def chosen_targets(spec: str | None, available: Targets | None, source: str) -> Targets:
    """``--targets`` among what ``source`` predicts (``available``; kinds as there): all of them when ``spec`` is None,
    the Big Five when neither is known."""
    if spec is None:
        return available or BIG_FIVE
    asked = parse_targets(spec)
    if available is None:
        return asked
    known = {t.name: t for t in available}
    missing = [name for name in asked.names if name not in known]
    if missing:
        raise PerfexError(f"--targets names {missing[0]!r}, which {source} does not predict (it predicts "
                          f"{available.spec()}); choose among those")
    return Targets(tuple(known[name] for name in asked.names))


def rated_targets(columns: Sequence[str], path: str) -> Targets:
    """What a study rates: the deploy CSV's targets (the Big Five for a CSV without the deploy's identity columns);
    raters answer level targets only, so a continuous target is refused."""
    targets = deploy_targets(columns) or BIG_FIVE
    continuous = [t.name for t in targets if t.continuous]
    if continuous:
        raise PerfexError(f"{path} predicts continuous target(s) {', '.join(continuous)}; user_study.py has raters answer "
                          "level targets only (docs/user_study.md): deploy a model of level targets (NAME or NAME:K)")
    return targets


def study_targets(manifest: dict) -> Targets:
    """The targets a study's raters answer, as select recorded them (a study without ``targets``: the Big Five)."""
    return Targets.from_list(manifest.get("targets"))
