"""Train several dense models of one architecture at once: one batched forward and backward pass per step.

An anomaly detector's members are small networks, and training them one after another spends most of its
time in Python and in launching tiny kernels, not in arithmetic. Stacking the members' weights turns M
small matrix products into one batched product (``torch.baddbmm``). Each member still sees its own
shuffle of the rows, and since the loss is the sum of the members' own losses, each gets exactly the
gradient it would get alone; Adam and the schedule act element-wise, so the result is M independently
trained models. (``torch.func.vmap`` over the modules does the same for any architecture, but measured
4x slower than separate training for these sizes on a CPU: its per-step dispatch costs more than the
arithmetic.) Models made of Linear layers, element-wise activations, Flatten and Unflatten qualify
(``stackable``); others train on their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aekit.errors import TrainingError
from aekit.training.config import TrainConfig
from aekit.training.trainer import _schedule

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Identity)


def _layers(model: nn.Module) -> list[nn.Module]:
    return [*model.encoder.net, *model.decoder.net]


def stackable(models: Sequence[nn.Module]) -> bool:
    """Whether ``fit_together`` can train these models at once: dense stacks of the layers it knows, in
    the same order; their Linear layers may differ in width (narrower ones are padded with zeros)."""
    known = (nn.Linear, nn.Flatten, nn.Unflatten, *ELEMENTWISE)
    kinds = []
    for model in models:
        nets = [getattr(getattr(model, part, None), "net", None) for part in ("encoder", "decoder")]
        if not all(isinstance(net, nn.Sequential) for net in nets):
            return False
        if not all(isinstance(layer, known) for layer in _layers(model)):
            return False
        kinds.append([type(layer) for layer in _layers(model)])
    # Zero padding is exact only where every activation maps 0 to 0 (all of ELEMENTWISE but Sigmoid).
    padded = len({tuple(_shapes(m)) for m in models}) > 1
    return all(k == kinds[0] for k in kinds) and not (padded and nn.Sigmoid in kinds[0])


def _shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [
        (layer.in_features, layer.out_features) for layer in _layers(model) if isinstance(layer, nn.Linear)
    ]


def fit_together(
    models: Sequence[nn.Module], data: Tensor, config: TrainConfig, seeds: Sequence[int]
) -> list[list[dict[str, float]]]:
    """Train ``models`` (``stackable``: the same layers, widths may differ) in place on the scaled rows
    ``data`` with mean squared reconstruction error, ``config``'s epochs, batch size, learning rate and
    schedule; member m shuffles the rows with ``seeds[m]``. Returns each member's history (per epoch).

    Members of different widths train in one stack: a narrower layer is padded with zero weights to the
    widest. A padded unit's input weights and bias are 0, so it outputs act(0) = 0; its output weights are
    0, so its gradients are 0 as well, and Adam leaves a parameter with zero gradients where it is: the
    padding stays 0 and each member trains exactly as its own narrower network would.
    """
    count, n = len(models), len(data)
    layers = _layers(models[0])
    linear = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    widest = [max(s) for s in zip(*(_shapes(m) for m in models), strict=True)]
    # Per Linear layer: weights (M, in, out) and biases (M, 1, out), stacked and zero-padded.
    weights, biases = [], []
    for j, i in enumerate(linear):
        n_in, n_out = widest[j]
        weight = torch.zeros(count, n_in, n_out, dtype=data.dtype, device=data.device)
        bias = torch.zeros(count, 1, n_out, dtype=data.dtype, device=data.device)
        for m, model in enumerate(models):
            layer = _layers(model)[i]
            weight[m, : layer.in_features, : layer.out_features] = layer.weight.detach().T
            bias[m, 0, : layer.out_features] = layer.bias.detach()
        weights.append(weight.requires_grad_())
        biases.append(bias.requires_grad_())

    def forward(x: Tensor) -> Tensor:  # (M, B, *shape) -> the members' reconstructions, same shape
        j = 0
        for layer in layers:
            if isinstance(layer, nn.Linear):
                x = torch.baddbmm(biases[j], x, weights[j])  # (M, B, out)
                j += 1
            elif isinstance(layer, nn.Flatten):
                x = x.flatten(2)  # (M, B, features)
            elif isinstance(layer, nn.Unflatten):
                x = x.unflatten(2, layer.unflattened_size)  # (M, B, *shape)
            else:
                x = layer(x)  # element-wise
        return models[0].activate(x)

    params = [*weights, *biases]
    steps_per_epoch = math.ceil(n / config.batch_size)
    adam = _Adam(params, _learning_rates(config, steps_per_epoch), config.weight_decay)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    histories: list[list[dict[str, float]]] = [[] for _ in models]
    started = time.perf_counter()
    for epoch in range(config.epochs):
        # (M, N): each member's own order of the rows this epoch
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(data.device)
        total = torch.zeros(count, dtype=torch.float64, device=data.device)
        for start in range(0, n, config.batch_size):
            batch = data[order[:, start : start + config.batch_size]]  # (M, B, ...)
            loss = (forward(batch) - batch).square().flatten(2).mean(dim=2).mean(dim=1)  # (M,)
            grads = torch.autograd.grad(loss.sum(), params)  # the sum: each member's own gradient
            adam.step(grads)
            total += loss.detach().double() * batch.shape[1]
        means = (total / n).tolist()
        if not all(math.isfinite(v) for v in means):
            raise TrainingError(
                f"the training loss became {means} in epoch {epoch + 1}. Lower the learning rate (now "
                f"lr={config.lr:g}; try {config.lr / 10:g}), check the data for NaN or huge values, or use "
                "scaling='standard'."
            )
        lr = adam.rates[min(adam.count, len(adam.rates)) - 1]
        seconds = time.perf_counter() - started
        for m in range(count):  # the records the Trainer keeps, so reports read both alike
            record = {"epoch": epoch + 1, "loss": means[m], "recon": means[m], "lr": lr, "seconds": seconds}
            histories[m].append(record)
    with torch.no_grad():  # the trained weights back into each member, without the padding
        for m, model in enumerate(models):
            for j, i in enumerate(linear):
                layer = _layers(model)[i]
                layer.weight.copy_(weights[j][m, : layer.in_features, : layer.out_features].T)
                layer.bias.copy_(biases[j][m, 0, : layer.out_features])
    return histories


def _learning_rates(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate of every step under the Trainer's schedule (the same function computes both)."""
    import warnings

    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = _schedule(config, dummy, steps_per_epoch)
    rates = []
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": no optimizer steps here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(config.epochs * steps_per_epoch):
            rates.append(dummy.param_groups[0]["lr"])
            scheduler.step()
    return rates


class _Adam:
    """Adam (Kingma & Ba 2015; torch's defaults) on a few stacked tensors, in torch's multi-tensor ops.

    torch.optim's step first imports torch._dynamo (about 6 s on this 2-core machine, once per process)
    and adds ~0.5 ms of bookkeeping per step; a detector's members take thousands of steps of ~1 ms.
    """

    def __init__(self, params: list[Tensor], rates: list[float], weight_decay: float = 0.0):
        self.params, self.rates, self.weight_decay = params, rates, weight_decay
        self.mean = [torch.zeros_like(p) for p in params]
        self.square = [torch.zeros_like(p) for p in params]
        self.count = 0

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        lr = self.rates[min(self.count, len(self.rates) - 1)]
        self.count += 1
        if self.weight_decay:
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        torch._foreach_lerp_(self.mean, grads, 1 - betas[0])
        torch._foreach_mul_(self.square, betas[1])
        torch._foreach_addcmul_(self.square, grads, grads, value=1 - betas[1])
        corrected = 1 - betas[1] ** self.count
        denominator = torch._foreach_div(torch._foreach_sqrt(self.square), math.sqrt(corrected))
        torch._foreach_add_(denominator, eps)
        torch._foreach_addcdiv_(self.params, self.mean, denominator, value=-lr / (1 - betas[0] ** self.count))
