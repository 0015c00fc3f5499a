"""Learned image compression: lossy and lossless codecs and the ``.aez`` archive (``aekit compress``).

``ImageCodec`` is the estimator (fit / compress / decompress / save / load); ``CodecNet`` the network
(``network``), ``EntropyBottleneck`` its learned prior (``entropy``), ``train_codec`` the rate-distortion
loop (``training``). See docs/codec.md.
"""

from aekit.codec.codec import ImageCodec
from aekit.codec.entropy import EntropyBottleneck
from aekit.codec.network import GDN, CodecNet, CodecNetConfig
from aekit.codec.training import train_codec

__all__ = ["GDN", "CodecNet", "CodecNetConfig", "EntropyBottleneck", "ImageCodec", "train_codec"]
