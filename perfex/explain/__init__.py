"""Explanations: integrated-gradients attributions, attention weights, their storage and plots, AU importance (the test report's section: perfex.evaluate.importance)."""

from .attributions import N_STEPS, TARGET, default_baseline, explain_batch, has_attention, model_targets, target_text
from .clips import ClipExplanations, explain_clips
from .importance import attribution_importance, permutation_importance, point_predictions
from .plots import plot_clip_explanation, plot_importance
from .writer import ExplanationWriter, Explanations, load_explanations

__all__ = ["N_STEPS", "TARGET", "ClipExplanations", "ExplanationWriter", "Explanations", "attribution_importance",
           "default_baseline", "explain_batch", "explain_clips", "has_attention", "load_explanations", "model_targets",
           "permutation_importance", "plot_clip_explanation", "plot_importance", "point_predictions", "target_text"]
