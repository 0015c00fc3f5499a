"""The errors aekit raises on purpose.

Every expected failure (bad data, bad settings, a damaged file) is an ``AekitError``: the CLI prints its
message as one line and exits with status 2. Anything else reaching the user is a bug.
They subclass ``ValueError`` so scikit-learn's contract ("bad input raises ValueError") still holds.
"""


class AekitError(ValueError):
    """Base of every error whose message is meant for the user."""


class DataError(AekitError):
    """The data could not be read or does not fit what was asked of it."""


class ConfigError(AekitError):
    """A setting has a value the model or trainer cannot use."""


class ModelFileError(AekitError):
    """A model or checkpoint file is missing, damaged, or from an incompatible version."""


class NetworksNeededError(ModelFileError):
    """A model file built with the user's own networks was opened without their classes (``modules=``):
    aekit never imports what a file names. ``needs`` says which networks; ``call`` how to pass them."""

    def __init__(self, message: str, needs: str = "", call: str = ""):
        super().__init__(message)
        self.needs = needs
        self.call = call


class TrainingError(AekitError):
    """Training went wrong in a way the user can fix (e.g. the loss became NaN)."""


class ArchiveError(DataError):
    """A compressed archive (.aez) is not one, is damaged, or breaks the format's limits."""


class PosteriorCollapseWarning(UserWarning):
    """A VAE finished training with codes that say almost nothing about its inputs (KL to the prior ~ 0):
    its decoder ignores them, so its samples and reconstructions are all the same blurry average."""


class CopyWarning(UserWarning):
    """An autoencoder's code is as wide as its input and nothing (noise, a sparsity or KL penalty) stops it
    from learning the identity, which reconstructs everything and learns nothing."""


class DataRangeWarning(UserWarning):
    """New data's values lie far from the range the model was trained on (e.g. digits scaled 0..16 given to
    a model of 0..255 pixels): its outputs will be meaningless, often black pictures."""


class AtypicalInputError(DataError):
    """Strict mode refused inputs less typical than 99.9% of the model's training data
    (``aekit.typicality``): the model's outputs for them would be unreliable."""


class NoTypicalityError(ModelFileError):
    """Typicality was asked of a model whose file predates it: it stores no training distribution."""


class TypicalityWarning(UserWarning):
    """Some inputs are less typical than 99.9% of the model's training data (their reconstruction error or
    code lies farther out than that): an autoencoder only works on data like what it learned."""
