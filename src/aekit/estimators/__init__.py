"""The scikit-learn-style front of aekit."""

from aekit.estimators.anomaly import AnomalyDetector
from aekit.estimators.autoencoder import AutoEncoder

__all__ = ["AnomalyDetector", "AutoEncoder"]
