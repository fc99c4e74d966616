"""Testing a model: evaluation, the Markdown report, AU importance, cross-validation."""
