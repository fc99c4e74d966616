"""PerFeX: Big Five personality traits from facial Action Unit time series."""

from .api import Model, create_model, load_clips, load_model
from .core import __version__

__all__ = ["Model", "__version__", "create_model", "load_clips", "load_model"]
