"""The core every layer may use: errors, trait and AU schema, paths, compute (threads, precision, devices), clips,
windows, metrics, tables and plots. Imports nothing from the rest of perfex."""

__version__ = "0.1.0"
