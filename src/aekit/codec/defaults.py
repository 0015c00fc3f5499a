"""What ``ImageCodec``'s "auto" settings become: one profile for small images, one for photos.

Small images (all of one shape no larger than the training crop, so they train whole: MNIST digits,
CIFAR thumbnails) are mostly flat and carry few bits: two stages (a latent 4x smaller per side), a narrow
latent, rate-distortion weights far below the photo ones, and a pixel head trained for near-lossless
context, whose quality ladder is then picked on held-out images (``aekit.codec.ladder``; with
lambdas of your own, one quality per level instead). These are the
settings of bench/codec_mnist.py, where they gave 3-4x smaller files than WebP at equal PSNR. Photos
(any other images: larger, or of mixed sizes, trained on crops) keep the usual learned-codec shape: three
stages, a wider latent, CompressAI-like weights and one quality per latent level.
"""

from __future__ import annotations

from dataclasses import dataclass

from aekit.codec.data import trains_whole
from aekit.codec.ladder import TRAIN_BINS
from aekit.codec.network import DEFAULT_LAMBDAS

# rate-distortion weights for small images (bench/codec_mnist.py's): on mostly flat images even the
# finest level costs few bits, and the ladder codes near-lossless pixels over the cheapest ones
SMALL_LAMBDAS = (0.0001, 0.00015, 0.0002, 0.0003, 0.0006, 0.0012, 0.005, 0.04)


@dataclass(frozen=True)
class Profile:
    latent: int
    stages: int
    lambdas: tuple[float, ...]
    pixel_mixtures: int
    # qualities="auto" with the profile's own lambdas: pick (level, bin width) pairs on held-out images,
    # and pixel_train_bins="auto" trains the pixel head for their context; else one quality per level
    ladder: bool


PROFILES = {
    "small": Profile(latent=32, stages=2, lambdas=SMALL_LAMBDAS, pixel_mixtures=3, ladder=True),
    "photo": Profile(latent=64, stages=3, lambdas=DEFAULT_LAMBDAS, pixel_mixtures=5, ladder=False),
}


def profile_name(pictures, crop: int) -> str:
    """The profile's name: "small" when the images train whole (one shape, no side above ``crop``)."""
    return "small" if trains_whole(pictures, crop) else "photo"


def is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


def uses_ladder(profile: Profile, lambdas, qualities) -> bool:
    """Whether fit picks a near-lossless ladder: the profile's own, when lambdas and qualities are "auto"
    (weights chosen by hand ask for one quality per level, as they always did)."""
    return profile.ladder and is_auto(lambdas) and is_auto(qualities)


def pixel_train_bins(profile: Profile, lambdas, qualities) -> tuple[int, ...]:
    """pixel_train_bins="auto": every ladder bin width's context when there is a ladder, else exact only."""
    return TRAIN_BINS if uses_ladder(profile, lambdas, qualities) else (1,)
