"""The model families by name: the one place that lists them. A new family is one file and one line here."""

from aekit.models.base import AutoEncoderModel
from aekit.models.conv import ConvAutoEncoder
from aekit.models.dense import DenseAutoEncoder
from aekit.models.sparse import SparseAutoEncoder
from aekit.models.vae import VariationalAutoEncoder

FAMILIES: dict[str, type[AutoEncoderModel]] = {
    "dense": DenseAutoEncoder,
    "conv": ConvAutoEncoder,
    "sparse": SparseAutoEncoder,
    "vae": VariationalAutoEncoder,
}


def family_of(model: AutoEncoderModel) -> str:
    for name, cls in FAMILIES.items():
        if type(model) is cls:
            return name
    raise KeyError(type(model).__name__)


def build_model(family: str, settings: dict) -> AutoEncoderModel:
    """Build a family's model from a dict of its settings (as stored in model files)."""
    from aekit.errors import ConfigError

    if family not in FAMILIES:
        raise ConfigError(f"unknown model kind {family!r}; choose one of {', '.join(FAMILIES)}.")
    cls = FAMILIES[family]
    return cls(cls.config_class.from_dict(settings))
