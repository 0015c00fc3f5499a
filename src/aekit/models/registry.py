"""The model families by name: the one place that lists them. A new family is one file and one line here."""

from torch import nn

from aekit.models.base import AutoEncoderModel
from aekit.models.conv import ConvAutoEncoder
from aekit.models.dense import DenseAutoEncoder
from aekit.models.sparse import SparseAutoEncoder
from aekit.models.vae import VariationalAutoEncoder
from aekit.restore.network import RestorationUNet

FAMILIES: dict[str, type[AutoEncoderModel]] = {
    "dense": DenseAutoEncoder,
    "conv": ConvAutoEncoder,
    "sparse": SparseAutoEncoder,
    "vae": VariationalAutoEncoder,
}

# Image-to-image networks (aekit.restore): saved in the same model files, but with no code to encode to,
# so they are listed apart and no AutoEncoder ever builds one.
NETWORKS: dict[str, type[nn.Module]] = {
    "restore-unet": RestorationUNet,
}


def family_of(model: nn.Module) -> str:
    for name, cls in {**FAMILIES, **NETWORKS}.items():
        if type(model) is cls:
            return name
    raise KeyError(type(model).__name__)


def build_model(family: str, settings: dict, registry: dict[str, type[nn.Module]] = FAMILIES) -> nn.Module:
    """Build a family's model from a dict of its settings (as stored in model files)."""
    from aekit.errors import ConfigError

    if family not in registry:
        raise ConfigError(f"unknown model kind {family!r}; choose one of {', '.join(registry)}.")
    cls = registry[family]
    return cls(cls.config_class.from_dict(settings))
