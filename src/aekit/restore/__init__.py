"""Image restoration: denoise, colorize, upscale and inpaint with networks trained on clean images only.

``from aekit.restore import ImageRestorer``. The estimator is imported on first use because
``aekit.models`` lists this package's network for model files, and the estimator imports the file layer.
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
