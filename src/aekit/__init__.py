"""aekit: autoencoders made practical.

``from aekit import AutoEncoder`` is all most users need. Heavy modules (torch) load on first use, so
``import aekit`` and the ``aekit`` command stay fast.
"""

from aekit._version import __version__

__all__ = ["AutoEncoder", "__version__"]


def __getattr__(name: str):
    if name == "AutoEncoder":
        from aekit.estimators import AutoEncoder

        return AutoEncoder
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")
