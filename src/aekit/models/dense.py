"""Dense (fully connected) autoencoder: the standard one-hidden-layer model and deep stacks alike.

``hidden`` sets the layers and nodes per layer; the decoder mirrors them unless ``decoder_hidden`` is given
(Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks", Science 2006).
"""

from aekit.models.base import AutoEncoderModel


class DenseAutoEncoder(AutoEncoderModel):
    pass
