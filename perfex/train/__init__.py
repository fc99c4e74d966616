"""Fitting a model: the training loop (loop.py), losses, the statistics start, selection, calibration."""
