"""Per-trait model selection: each trait decides on validation data whether the deep path helps it.

A fresh model starts as the logistic regression on clip statistics (its statistics path, kept fixed while the deep
path trains). After every epoch each trait's validation score is computed with the deep path on and off (off is the
start itself). A trait's gate opens when the deep path beats the start on that trait by more than one bootstrap
standard error of the paired difference (source videos resampled); the epoch kept is the one whose gated model scores
best summed over traits. Early stopping waits until no trait has improved its own score for ``patience`` epochs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.metrics import bootstrap_rows, quadratic_weighted_kappa
from ..core.schema import BIG_FIVE, Targets

GATE_RESAMPLES = 200  # bootstrap resamples of source videos for each trait's standard error
GATE_STANDARD_ERRORS = 1.0  # a gate opens on a gain beyond this many standard errors (bench/QUALITY.md: with two,
# weak timing traits stayed closed; with one, a signal-free trait opened at no measurable cost in accuracy)


def _trait_macro_f1(levels: np.ndarray, predicted: np.ndarray) -> float:
    labels = np.union1d(levels, predicted)
    f1 = [2 * np.sum((levels == k) & (predicted == k)) / max(np.sum(levels == k) + np.sum(predicted == k), 1) for k in labels]
    return float(np.mean(f1))


def trait_scores(probs: np.ndarray, levels: np.ndarray, scores: np.ndarray, output: str, select: str,
                 targets: Targets = BIG_FIVE) -> np.ndarray:
    """Each trait's validation score, higher is better: minus its mean NLL (minus its squared error for ``score``
    outputs), its QWK or its macro-F1 (``select``); a continuous target's is always minus its mean squared error in
    standardised units; [traits]."""
    if not targets.is_big_five:
        return _target_scores(probs, levels, scores, select, targets)
    n_traits = probs.shape[1]
    if select == "loss" and output == "score":
        error = (BIG_FIVE.scores(probs) - scores) ** 2
        return -np.array([np.nanmean(error[:, t]) if np.isfinite(error[:, t]).any() else 0.0 for t in range(n_traits)])
    if select == "loss":
        picked = np.take_along_axis(probs, levels[..., None], axis=-1)[..., 0]
        return np.log(np.clip(picked, 1e-12, None)).mean(axis=0)
    predicted = probs.argmax(axis=2)
    per_trait = quadratic_weighted_kappa if select == "qwk" else _trait_macro_f1
    values = np.array([per_trait(levels[:, t], predicted[:, t]) for t in range(n_traits)], dtype=np.float64)
    return np.nan_to_num(values, nan=0.0)


def _target_scores(probs: np.ndarray, levels: np.ndarray, scores: np.ndarray, select: str, targets: Targets) -> np.ndarray:
    """``trait_scores`` of targets of any kind, one by one."""
    values = targets.standardised(scores)
    result = []
    for t, target in enumerate(targets):
        if target.continuous:
            error = (probs[:, t, 0] - values[:, t]) ** 2
            result.append(-np.nanmean(error) if np.isfinite(error).any() else 0.0)
        elif select == "loss":
            picked = probs[np.arange(len(probs)), t, levels[:, t]]
            result.append(np.log(np.clip(picked, 1e-12, None)).mean())
        elif select == "qwk":
            result.append(quadratic_weighted_kappa(levels[:, t], probs[:, t].argmax(axis=1), target.levels))
        else:
            result.append(_trait_macro_f1(levels[:, t], probs[:, t].argmax(axis=1)))
    return np.nan_to_num(np.array(result, dtype=np.float64), nan=0.0)


def paired_standard_errors(probs: np.ndarray, reference: np.ndarray, levels: np.ndarray, scores: np.ndarray, output: str,
                           select: str, groups: np.ndarray, seed: int, resamples: int = GATE_RESAMPLES,
                           targets: Targets = BIG_FIVE) -> np.ndarray:
    """Per trait, one bootstrap standard error of (score of ``probs`` - score of ``reference``), both scored on the same
    resampled source videos; [traits]."""
    differences = np.array([trait_scores(probs[rows], levels[rows], scores[rows], output, select, targets)
                            - trait_scores(reference[rows], levels[rows], scores[rows], output, select, targets)
                            for rows in bootstrap_rows(np.asarray(groups, dtype=str), resamples, seed)])
    return differences.std(axis=0)


@dataclass
class SelectionState:
    """What selection remembers between epochs (saved with the optimiser state, so resume continues it exactly)."""

    best_score: float | None = None
    best_epoch: int = 0
    best_gates: list[float] | None = None
    trait_best: list[float] = field(default_factory=list)
    trait_since: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochVerdict:
    """One epoch's per-trait scores (deep path on), gates and gated score, and whether it is the best so far."""

    trait_scores: np.ndarray
    gates: np.ndarray
    gain_z: np.ndarray  # the deep path's gain over the start in paired standard errors (NaN without a start)
    score: float
    improved: bool
    trait_improved: np.ndarray


class TraitSelection:
    """Keeps the best epoch and each trait's gate; with no start (retrain, models without a statistics path) every
    gate stays as it is and the epoch is chosen on the summed score."""

    def __init__(self, select: str, output: str, n_traits: int, state: SelectionState | None = None,
                 fixed_gates: np.ndarray | None = None, targets: Targets = BIG_FIVE) -> None:
        self.select, self.output, self.targets = select, output, targets
        self.state = state or SelectionState(trait_best=[-np.inf] * n_traits, trait_since=[0] * n_traits)
        self.fixed_gates = fixed_gates
        self.start_probs: np.ndarray | None = None
        self.start_scores: np.ndarray | None = None

    def set_start(self, probs: np.ndarray, levels: np.ndarray, scores: np.ndarray) -> None:
        """The statistics start's validation probabilities: what a trait with a closed gate predicts."""
        self.start_probs = probs
        self.start_scores = trait_scores(probs, levels, scores, self.output, self.select, self.targets)

    def gain_z(self, probs: np.ndarray, per_trait: np.ndarray, levels: np.ndarray, scores: np.ndarray,
               groups: np.ndarray, seed: int) -> np.ndarray:
        """Each trait's gain over the start divided by its paired bootstrap standard error (inf for an exact gain)."""
        gain = per_trait - self.start_scores
        margin = paired_standard_errors(probs, self.start_probs, levels, scores, self.output, self.select, groups, seed,
                                        targets=self.targets)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(margin > 0, gain / margin, np.sign(gain) * np.inf)

    def update(self, epoch: int, probs: np.ndarray, levels: np.ndarray, scores: np.ndarray, groups: np.ndarray,
               seed: int) -> EpochVerdict:
        """Score one epoch's validation probabilities (deep path on); epoch 0 is the start (every gate closed)."""
        per_trait = trait_scores(probs, levels, scores, self.output, self.select, self.targets)
        z = np.full(len(per_trait), np.nan)
        if self.start_probs is None:
            gates = np.ones(len(per_trait)) if self.fixed_gates is None else np.asarray(self.fixed_gates, dtype=np.float64)
        elif epoch == 0:
            gates = np.zeros(len(per_trait))
        else:
            z = self.gain_z(probs, per_trait, levels, scores, groups, seed)
            gates = (z > GATE_STANDARD_ERRORS).astype(np.float64)
        closed = self.start_scores if self.start_scores is not None else per_trait  # a closed gate scores as the start
        score = float(np.where(gates > 0, per_trait, closed).sum())
        state = self.state
        improved = state.best_score is None or score > state.best_score
        if improved:
            state.best_score, state.best_epoch, state.best_gates = score, epoch, gates.tolist()
        trait_improved = per_trait > np.asarray(state.trait_best)
        state.trait_best = np.where(trait_improved, per_trait, state.trait_best).tolist()
        state.trait_since = np.where(trait_improved, 0, np.asarray(state.trait_since) + 1).astype(int).tolist()
        return EpochVerdict(per_trait, gates, z, score, improved, trait_improved)

    def should_stop(self, patience: int) -> bool:
        """True once every trait has gone ``patience`` epochs without improving its own validation score."""
        return min(self.state.trait_since) >= patience
