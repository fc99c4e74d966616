"""Prediction: the engines (torch, ONNX Runtime), windowed batches, deploy and its outputs."""
