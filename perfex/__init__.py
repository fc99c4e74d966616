"""PerFeX: Big Five personality traits from facial Action Unit time series."""

from .api import Model, create_model, load_clips, load_model

__version__ = "0.1.0"
__all__ = ["Model", "__version__", "create_model", "load_clips", "load_model"]
