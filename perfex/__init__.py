"""PerFeX: Big Five personality traits from facial Action Unit time series."""

__version__ = "0.1.0"
