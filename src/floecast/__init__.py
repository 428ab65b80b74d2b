"""floecast: operational daily sea-ice forecasting."""

__version__ = "0.5.0"
