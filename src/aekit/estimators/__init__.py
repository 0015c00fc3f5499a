"""The scikit-learn-style front of aekit."""

from aekit.estimators.autoencoder import AutoEncoder

__all__ = ["AutoEncoder"]
