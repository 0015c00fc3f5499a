"""Pythae's trainer on aekit's dense VAE: one timed training run, printed as one JSON line on stdout.

Runs in Pythae's own venv (bench/.venv-pythae), so it imports nothing from aekit; throughput.py calls it
between its aekit and plain-loop runs and passes the data as a uint8 .npy file (N, H, W):

    bench/.venv-pythae/bin/python bench/pythae_vae.py DATA.npy --epochs 2 --batch-size 128 --threads 2

The encoder and decoder copy the layers of aekit's dense VAE (models/layers.py, DenseEncoder and
DenseDecoder; kaiming-uniform init, zero biases), with the same module names, so throughput.py can check
that the parameter shapes match. Timed like the other two contenders: from the uint8 array in memory to a
trained model, loading the file excluded, after a short warm-up run in this same process.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile
import time
from importlib.metadata import version

os.environ.setdefault("TQDM_DISABLE", "1")  # Pythae always adds a tqdm bar; keep the console quiet

import numpy as np
import torch
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from torch import nn


class Encoder(BaseEncoder):
    """aekit's DenseEncoder with out_features = 2 * code_size, split into mean and log-variance."""

    def __init__(self, input_shape: tuple[int, ...], widths: tuple[int, ...], code_size: int):
        super().__init__()
        sizes = [math.prod(input_shape), *widths]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], 2 * code_size))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        mean, logvar = self.net(x).chunk(2, dim=1)  # (B, K) each
        return ModelOutput(embedding=mean, log_covariance=logvar.clamp(-30.0, 20.0))


class Decoder(BaseDecoder):
    """aekit's DenseDecoder, then the sigmoid aekit applies for data in [0, 1]."""

    def __init__(self, code_size: int, widths: tuple[int, ...], output_shape: tuple[int, ...]):
        super().__init__()
        sizes = [code_size, *widths]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers += [nn.Linear(sizes[-1], math.prod(output_shape)), nn.Unflatten(1, tuple(output_shape))]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))  # (B, C, H, W)


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def train(images: np.ndarray, args: argparse.Namespace, out_dir: str) -> dict:
    """From uint8 images to a trained VAE with Pythae's BaseTrainer; returns the timings."""
    started, cpu = time.perf_counter(), time.process_time()
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)  # (N, 1, H, W)
    shape = tuple(x.shape[1:])
    widths = tuple(args.hidden)
    torch.manual_seed(args.seed)
    model = VAE(
        VAEConfig(input_dim=shape, latent_dim=args.code_size, reconstruction_loss="mse"),
        encoder=Encoder(shape, widths, args.code_size),
        decoder=Decoder(args.code_size, tuple(reversed(widths)), shape),
    )
    init_weights(model)
    config = BaseTrainerConfig(
        output_dir=out_dir,
        per_device_train_batch_size=args.batch_size,
        num_epochs=args.epochs,
        learning_rate=args.lr,
        optimizer_cls="Adam",
        # Pythae steps its scheduler once per epoch, so OneCycle runs over epochs, not batches.
        # pct_start 0.3: 0.2 * epochs == 1 would make torch's OneCycleLR divide by zero.
        scheduler_cls="OneCycleLR",
        scheduler_params={"max_lr": args.lr, "total_steps": args.epochs, "pct_start": 0.3},
        seed=args.seed,
        no_cuda=True,
    )
    trainer = BaseTrainer(model, BaseDataset(x, torch.zeros(len(x))), None, config)

    loop = {"seconds": 0.0, "loss": math.nan}
    train_step = trainer.train_step

    def timed_train_step(epoch):
        t = time.perf_counter()
        loss = train_step(epoch)
        loop["seconds"] += time.perf_counter() - t
        loop["loss"] = float(loss)
        return loss

    trainer.train_step = timed_train_step
    trainer.train()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    n = len(x) * args.epochs
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "loop_seconds": loop["seconds"],
        "samples_per_s": n / seconds,
        "cpu_samples_per_s": n / cpu,
        "loop_samples_per_s": n / loop["seconds"],
        "final_epoch_loss": loop["loss"],  # Pythae's own VAE loss (summed over pixels): not comparable
        "param_shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="uint8 images (N, H, W) as .npy")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--code-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warmup", type=int, default=1024, help="samples in the untimed warm-up run")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    for name in ("pythae", "pythae.trainers.base_trainer.base_trainer"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no per-epoch console lines
    images = np.load(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})
        train(images[: args.warmup], warm, os.path.join(tmp, "warmup"))
        result = train(images, args, os.path.join(tmp, "run"))
    result.update(threads=torch.get_num_threads(), pythae=version("pythae"), torch=torch.__version__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
