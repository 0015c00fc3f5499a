"""The model families by name: the one place that lists them. A new family is one file and one line here."""

from torch import nn

from aekit.models.base import AutoEncoderModel
from aekit.models.conv import ConvAutoEncoder
from aekit.models.conv1d import Conv1dAutoEncoder
from aekit.models.dense import DenseAutoEncoder
from aekit.models.sparse import SparseAutoEncoder
from aekit.models.vae import VariationalAutoEncoder

FAMILIES: dict[str, type[AutoEncoderModel]] = {
    "dense": DenseAutoEncoder,
    "conv": ConvAutoEncoder,
    "sparse": SparseAutoEncoder,
    "vae": VariationalAutoEncoder,
    "conv1d": Conv1dAutoEncoder,
}

# Image-to-image networks: saved in the same model files, but with no code to encode to, so they are listed
# apart and no AutoEncoder ever builds one. Each application adds its own when imported (aekit.restore.network
# adds "restore-unet"), so this layer knows none of them; aekit.io imports them before reading a file.
NETWORKS: dict[str, type[nn.Module]] = {}


def family_of(model: nn.Module) -> str:
    for name, cls in {**FAMILIES, **NETWORKS}.items():
        if type(model) is cls:
            return name
    raise KeyError(type(model).__name__)


def input_layout(family: str, backbone: str | None = None) -> str:
    """The model input a family takes with ``backbone`` (None: its own default): "flat", "image" or
    "series" (``layers.LAYOUTS``); what the data spec arranges the user's arrays for."""
    from aekit.models.layers import LAYOUTS

    return LAYOUTS.get(backbone or getattr(FAMILIES[family].config_class, "backbone", "dense"), "flat")


def build_model(
    family: str, settings: dict, registry: dict[str, type[nn.Module]] = FAMILIES, **options
) -> nn.Module:
    """Build a family's model from a dict of its settings (as stored in model files). ``options`` go to its
    constructor: ``modules`` (the classes of the user's own networks) for settings that name them."""
    from aekit.errors import ConfigError

    if family not in registry:
        raise ConfigError(f"unknown model kind {family!r}; choose one of {', '.join(registry)}.")
    cls = registry[family]
    return cls(cls.config_class.from_dict(settings), **options)
