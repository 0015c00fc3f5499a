"""Learned image compression: lossy and lossless codecs and the ``.aez`` archive (``aekit compress``).

``ImageCodec`` is the estimator (fit / compress / decompress / save / load); ``CodecNet`` the network
(``network``), ``EntropyBottleneck`` its learned prior (``entropy``), ``RateDistortion`` the network with
its rate-distortion loss, as the shared trainer trains it (``training``). See docs/codec.md.
"""

from aekit.codec.codec import ImageCodec
from aekit.codec.entropy import EntropyBottleneck
from aekit.codec.network import GDN, CodecNet, CodecNetConfig
from aekit.codec.training import RateDistortion

__all__ = ["GDN", "CodecNet", "CodecNetConfig", "EntropyBottleneck", "ImageCodec", "RateDistortion"]
