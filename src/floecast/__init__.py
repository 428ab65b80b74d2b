"""floecast: operational daily sea-ice forecasting."""

__version__ = "0.1.0"
