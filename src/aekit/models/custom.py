"""Your own networks in any family: the user's encoder and decoder ``nn.Module``s, not the built-in ones.

The encoder maps a batch (B, *input_shape) to features of any shape; a linear head maps them, flattened, to
what the family needs (a VAE's mean and log-variance, or the code), and is left out when a plain family's
encoder already gives (B, code_size). The decoder maps codes (B, code_size) to logits (B, *input_shape).
A model file stores each network as its import path ("pkg.module:QualName") and constructor arguments
(JSON) under ``model_config["networks"]``, never as code: the classes come from the caller (``modules``),
matched by that path, and nothing a file names is ever imported. The arguments are what the module's
``get_config()`` returns (Keras' convention), else its attributes named like the constructor's
parameters (scikit-learn's).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from aekit.errors import ConfigError
from aekit.models.layers import init_weights

ROLES = ("encoder", "decoder")
# What a user's constructor may raise for arguments it cannot take. Not Exception: the loader stops a build
# that registers too many tensors (tensorfile's _TooMany) by raising through the constructor.
CONSTRUCTOR_ERRORS = (
    TypeError,
    ValueError,
    RuntimeError,
    AttributeError,
    KeyError,
    IndexError,
    ArithmeticError,
)


class HeadedEncoder(nn.Module):
    """The user's encoder, its output flattened, then the linear head (an identity where none is needed)."""

    def __init__(self, net: nn.Module, head: nn.Module):
        super().__init__()
        self.net = net
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        features = self.net(x).flatten(1)  # (B, features)
        return self.head(features)  # (B, encoder_out)


# -- describing a network: its class and constructor arguments ---------------------------------------------
def class_path(cls: type) -> str:
    """The name a model file gives a class: "pkg.module:QualName"."""
    return f"{cls.__module__}:{cls.__qualname__}"


def signature(entry: dict[str, Any]) -> str:
    """A stored network as its call, for messages: "pkg.module:MyEncoder(width=64)"."""
    args = ", ".join(f"{k}={_short(v)}" for k, v in entry["args"].items())
    return f"{entry['class']}({args})"


def describe(module: Any, role: str) -> dict[str, Any]:
    """{"class": import path, "args": JSON constructor arguments} of the user's ``module``; ConfigError when
    the arguments cannot be found or stored, saying to add get_config()."""
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{role}= must be a torch nn.Module (an instance, such as MyEncoder(width=64)); got "
            f"{_short(module)} ({type(module).__name__})."
        )
    cls = type(module)
    params = _init_parameters(cls)
    get_config = getattr(module, "get_config", None)
    hint = _config_hint(cls, params)
    if callable(get_config):
        hint = f"make {cls.__name__}.get_config() return only such values: the constructor's arguments."
        args, source = get_config(), f"{cls.__name__}.get_config()"
        if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
            raise ConfigError(
                f"the {role}'s {source} returned {_short(args)}; it must return a dict of the constructor's "
                "keyword arguments, by name."
            )
    else:
        args, source = {}, f"the {role}'s attributes"
        for name, p in params.items():
            if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
                raise ConfigError(
                    f"the {role} {cls.__name__} takes positional-only arguments (*{name} or {name}, /), "
                    f"which a model file cannot pass by name; {hint}"
                )
            if p.kind is p.VAR_KEYWORD:
                continue
            if not hasattr(module, name):
                raise ConfigError(
                    f"the {role} {cls.__name__} takes {name!r}, but has no attribute {name} to read its "
                    f"value from, so a model file could not rebuild it; store it (self.{name} = {name}) or "
                    f"{hint}"
                )
            args[name] = getattr(module, name)
    try:
        plain = {name: _plain(value, name) for name, value in args.items()}
    except _Unstorable as exc:
        raise ConfigError(
            f"the {role} {cls.__name__}'s constructor argument {exc} (from {source}) cannot go into a model "
            f"file, which stores JSON (numbers, strings, booleans, None, lists, dicts); {hint}"
        ) from None
    return {"class": class_path(cls), "args": plain}


def describe_networks(
    encoder: Any, decoder: Any, input_shape: tuple[int, ...], code_size: int
) -> dict[str, Any]:
    """``model_config["networks"]`` for the user's modules, checked as loading will use it: each class must
    rebuild the same weights from the stored arguments, and one sample must pass through (``probe``)."""
    networks: dict[str, Any] = {}
    for role, module in zip(ROLES, (encoder, decoder), strict=True):
        entry = networks[role] = describe(module, role)
        _check_rebuilds(module, entry, role)
    networks["features"] = probe(encoder, decoder, tuple(input_shape), code_size)
    return networks


def _check_rebuilds(module: nn.Module, entry: dict[str, Any], role: str) -> None:
    """The class, called with the stored arguments (on "meta": no storage), must have the module's weights."""
    cls = type(module)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        rebuilt = construct(cls, entry, role)
    given = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    again = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if given == again:
        return
    names = [*given, *(k for k in again if k not in given)]  # in the order of the layers
    name = next(k for k in names if given.get(k) != again.get(k))
    found = lambda shapes: str(shapes[name]) if name in shapes else "missing"  # noqa: E731
    raise ConfigError(
        f"the {role} does not rebuild from the arguments a model file would store: its weight {name} is "
        f"{found(given)} in the module given, {found(again)} in {signature(entry)}; "
        f"{_config_hint(cls, _init_parameters(cls))}"
    )


def probe(encoder: nn.Module, decoder: nn.Module, input_shape: tuple[int, ...], code_size: int) -> int:
    """Run one zero sample through the encoder and one zero code through the decoder (eval mode, no
    gradients, the global random streams forked); return the width of the encoder's flattened output.
    A shape that does not fit is one ConfigError naming what was found and what was expected."""
    if not isinstance(code_size, int) or isinstance(code_size, bool) or code_size < 1:
        raise ConfigError(f"code_size must be a positive integer; got {code_size!r}.")
    sample = (1, *input_shape)
    where = "one sample as the model sees it: (features,) for tables, (channels, height, width) for images"
    modes = {m: m.training for net in (encoder, decoder) for m in net.modules()}
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            encoder.eval()
            decoder.eval()
            features = _run(
                encoder, torch.zeros(sample, device=_device(encoder)), "encoder", f"{sample} ({where})"
            )
            if features.ndim < 2 or features.shape[0] != 1:
                raise ConfigError(
                    f"the encoder returns shape {tuple(features.shape)} for a batch of shape {sample}; "
                    "expected (1, features) or (1, ...): one row of features per sample."
                )
            code = torch.zeros(1, code_size, device=_device(decoder))
            out = _run(
                decoder, code, "decoder", f"(1, {code_size}) (a batch of one code of code_size={code_size})"
            )
    finally:
        for m, training in modes.items():
            m.train(training)
    if tuple(out.shape) != sample:
        raise ConfigError(
            f"the decoder returns shape {tuple(out.shape)} for codes of shape (1, {code_size}); expected "
            f"{sample}, the shape of {where}."
        )
    return math.prod(features.shape[1:])


def _run(net: nn.Module, x: Tensor, role: str, shape: str) -> Tensor:
    try:
        out = net(x)
    except (RuntimeError, ValueError, TypeError, IndexError, AttributeError, NotImplementedError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"the {role} fails on input of shape {shape}: {type(exc).__name__}: {detail}"
        ) from None
    if not isinstance(out, Tensor):
        raise ConfigError(
            f"the {role} must return one tensor; for input of shape {shape} it returns {_short(out)}."
        )
    return out


def _device(net: nn.Module) -> torch.device:
    first = next(net.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


# -- rebuilding: from the classes the caller gives --------------------------------------------------------
def check_entry(networks: Any) -> None:
    """A stored ``networks`` entry (from a file: untrusted) must have exactly the fields ``build`` reads."""
    if not isinstance(networks, dict) or set(networks) != {*ROLES, "features"}:
        raise ConfigError("networks must hold encoder, decoder and features.")
    for role in ROLES:
        entry = networks[role]
        if not isinstance(entry, dict) or set(entry) != {"class", "args"}:
            raise ConfigError(f"networks' {role} must hold class and args.")
        if (
            not isinstance(entry["class"], str)
            or ":" not in entry["class"]
            or not isinstance(entry["args"], dict)
        ):
            raise ConfigError(
                f"networks' {role} must name a class as 'module:QualName' and give args by name."
            )
    features = networks["features"]
    if type(features) is not int or features < 1:
        raise ConfigError(f"networks' features must be a positive integer; got {features!r}.")


def match(networks: dict[str, Any], modules: Sequence[Any]) -> tuple[dict[str, type], list[str]]:
    """The classes among ``modules`` that the stored networks name (by "module:QualName"), by role, and
    the roles none of them matched. Matching only compares names: nothing is imported."""
    given = {class_path(m): m for m in check_classes(modules)}
    found = {role: given[networks[role]["class"]] for role in ROLES if networks[role]["class"] in given}
    return found, [role for role in ROLES if role not in found]


def check_classes(modules: Sequence[Any]) -> Sequence[type]:
    """``modules`` as given, if it lists nn.Module classes; else one ConfigError."""
    if isinstance(modules, str | type):
        modules = [modules]  # a lone class or name: refused below if it is not a class, else fine
    for m in modules:
        if not (isinstance(m, type) and issubclass(m, nn.Module)):
            raise ConfigError(
                f"modules= lists nn.Module classes, such as [MyEncoder, MyDecoder] (not MyEncoder(...) or "
                f"a name); got {_short(m)}."
            )
    return modules


def load_call(networks: dict[str, Any], path: str) -> str:
    """ "AutoEncoder.load('m.aek', modules=[MyEncoder, MyDecoder])": how to open a file of these networks."""
    names = dict.fromkeys(networks[role]["class"].rpartition(":")[2] for role in ROLES)
    return f"AutoEncoder.load({path!r}, modules=[{', '.join(names)}])"


def construct(cls: type, entry: dict[str, Any], role: str) -> nn.Module:
    """``cls(**args)``; what the user's constructor raises becomes one ConfigError naming the call."""
    try:
        module = cls(**entry["args"])
    except CONSTRUCTOR_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"the {role} {signature(entry)} cannot be built: {type(exc).__name__}: {detail}"
        ) from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"the {role} {signature(entry)} is not a torch nn.Module.")
    return module


def build(
    networks: dict[str, Any], modules: Sequence[type], encoder_out: int, code_size: int
) -> tuple[HeadedEncoder, nn.Module]:
    """The encoder (with its head) and decoder of a model whose config names the user's networks."""
    check_entry(networks)
    found, missing = match(networks, modules)
    if missing:
        needs = ", ".join(f"{role} {signature(networks[role])}" for role in missing)
        raise ConfigError(
            f"this model is built from your own networks ({needs}); pass their classes: modules=[...]."
        )
    encoder = construct(found["encoder"], networks["encoder"], "encoder")
    decoder = construct(found["decoder"], networks["decoder"], "decoder")
    features = networks["features"]
    head: nn.Module = nn.Identity()
    # a VAE always has a head: features -> mean and log-variance
    if features != encoder_out or encoder_out != code_size:
        head = nn.Linear(features, encoder_out)
        init_weights(head)
    return HeadedEncoder(encoder, head), decoder


def start_from(model: nn.Module, encoder: nn.Module, decoder: nn.Module) -> None:
    """Give a model built by ``build`` the weights of the user's own modules (pretrained ones stay so)."""
    model.encoder.net.load_state_dict(encoder.state_dict())
    model.decoder.load_state_dict(decoder.state_dict())


def user_networks(model: nn.Module) -> tuple[nn.Module | None, nn.Module | None]:
    """The user's encoder and decoder inside ``model`` (without the head); (None, None) for built-in ones."""
    if getattr(model.config, "networks", None) is None:
        return None, None
    return model.encoder.net, model.decoder


# -- helpers ----------------------------------------------------------------------------------------------
class _Unstorable(Exception):
    pass


def _plain(value: Any, name: str) -> Any:
    """``value`` as JSON would give it back (tuples as lists, numpy numbers as Python ones); _Unstorable
    naming the first part that JSON cannot hold."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise _Unstorable(f"{name}={value!r} (not a finite number)")
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unstorable(f"{name}={_short(value)} (a dict with keys that are not strings)")
        return {k: _plain(v, f"{name}[{k!r}]") for k, v in value.items()}
    raise _Unstorable(f"{name}={_short(value)} (a {type(value).__name__})")


def _init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    if cls.__init__ is nn.Module.__init__:  # no constructor of its own: nothing to pass
        return {}
    return dict(inspect.signature(cls).parameters)


def _config_hint(cls: type, params: dict[str, inspect.Parameter]) -> str:
    names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    example = ", ".join(f"{n!r}: self.{n}" for n in names) or "'width': self.width"
    return (
        f"add get_config() to {cls.__name__}, returning the constructor's keyword arguments as JSON values "
        f"(def get_config(self): return {{{example}}})."
    )


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())  # one line: a module's repr has one per layer
    return text if len(text) <= limit else text[: limit - 3] + "..."
