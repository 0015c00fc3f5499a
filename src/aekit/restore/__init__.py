"""Image restoration: denoise, colorize, upscale and inpaint with networks trained on clean images only.

``from aekit.restore import ImageRestorer``. The estimator (torch, scikit-learn) is imported on first use,
so importing the package stays light. The network registers itself in
``aekit.models.registry.NETWORKS`` when ``aekit.restore.network`` is imported.
"""

__all__ = ["ImageRestorer", "psnr", "ssim"]


def __getattr__(name: str):
    if name == "ImageRestorer":
        from aekit.restore.restorer import ImageRestorer

        return ImageRestorer
    if name in ("psnr", "ssim"):
        from aekit.restore import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module 'aekit.restore' has no attribute {name!r}")
