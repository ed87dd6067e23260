"""Latent binary encoding in deep classifiers: models, metrics, sweeps and reports."""

__version__ = "0.1.0"
