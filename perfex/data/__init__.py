"""Clips in: the input readers (readers/), labels, splits, the parse cache, batches, the run options, the synthetic data and the original augmentations."""
