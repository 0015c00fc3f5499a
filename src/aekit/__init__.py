"""aekit: autoencoders made practical.

``from aekit import AutoEncoder`` is all most users need. Heavy modules (torch) load on first use, so
``import aekit`` and the ``aekit`` command stay fast.
"""

from aekit._version import __version__

__all__ = ["AnomalyDetector", "AutoEncoder", "TypicalityWarning", "__version__", "cluster_codes"]


def __getattr__(name: str):
    if name in ("AutoEncoder", "AnomalyDetector"):
        from aekit import estimators

        return getattr(estimators, name)
    if name == "TypicalityWarning":  # the warning aekit.typicality.check gives (errors.py: no torch)
        from aekit.errors import TypicalityWarning

        return TypicalityWarning
    if name == "cluster_codes":
        from aekit.clusters import cluster_codes

        return cluster_codes
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")
