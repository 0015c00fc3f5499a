"""Train the built-in photo codecs (``aekit compress photo ...``): RGB, and with --gray the grayscale one.

Format 2 (issue 18): a mean-scale hyperprior (aekit.codec.priors), a decoder that narrows at the fine stages
(widths 32/64/128 from the image side, 160 latent channels: ~5x cheaper than format 1's 96-wide one), a
quality ladder of 11 latent levels (lambda 0.0009..0.7) plus three near-lossless rungs coded under the pixel
head (bins of 5, 3, 2 values: at most 2 or 1 off), and a lossless mode.

    PYTHONPATH=src .venv/bin/python bench/train_photo_codec.py --minutes 600 --photos-dir /work/photo-corpus \
        --run-dir /work/codec-runs/photo            # resumable: add --resume to go on after a stop
    PYTHONPATH=src .venv/bin/python bench/train_photo_codec.py --gray --minutes 300 ... --run-dir ...-gray
    PYTHONPATH=src .venv/bin/python bench/train_photo_codec.py --export --run-dir ... --photos-dir ... \
        --out src/aekit/codec/weights/photo.aek --log LOG --train-command "..."   # the shipped file + results
    PYTHONPATH=src .venv/bin/python bench/train_photo_codec.py --minutes 1 --out /tmp/p.aek   # a smoke run

Data (never Kodak, never bsds500/val: those are the benchmark's test sets; nothing fetched):
  - BSDS500 train + test (400 photographs, 481x321) from $AEKIT_DATA_DIR/bsds500;
  - the Debian photographic wallpapers of bench/photo_corpus.py (--photos-dir) and the RGB photographs
    bundled with scikit-image, matplotlib and scikit-learn, at three scales (1, 0.7, 0.5; Lanczos);
  - random crops of --crop pixels, flips and quarter turns; CIFAR-10 (cifar10_test_jpeg.npz: 10,000 q75
    JPEG test images + 200 lossless ones) as whole 32x32 images, one step in ``--cifar-every``.
--gray trains on the luma of the same images (ITU-R BT.601, as Pillow's convert("L")).
A fixed four-image Kodak subset is only *measured* now and then, to log progress.

Objective: rate (z and y, bits per pixel) + lambda_q * 255^2 * MSE, noise for the rate, straight-through
rounding for the synthesis (Minnen & Singh 2020), one level per step (the middle of the ladder more often),
and every ``--pixel-every`` steps the pixel head's code length of one 2x2 group at the lossless level
(context shown exact or in bins of 2, 3 or 5). Convolutions run in bfloat16 under torch.autocast; rates and
the distortion in float32. The schedule follows the wall clock (``--minutes``): warm-up, constant, cosine
decay over the last ``--decay`` fraction. A checkpoint is written every few minutes; ``--resume`` goes on.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine import cpu_model  # bench/machine.py: the script's folder is on sys.path
from PIL import Image

from aekit.atomic import write_text_atomic
from aekit.codec.network import CodecNet, CodecNetConfig
from aekit.codec.pixels import GROUPS
from aekit.codec.training import pixel_bits

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"

# (package, path inside it): RGB photographs; the rest of skimage/data is drawings, microscopy or synthetic.
PHOTOS = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/motorcycle_right.png"),
    ("skimage", "data/rocket.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
)
GRAY_PHOTOS = (
    ("skimage", "data/camera.png"),
    ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"),
    ("skimage", "data/brick.png"),
    ("skimage", "data/coins.png"),
)
SCALES = (1.0, 0.7, 0.5)
GRAY_SHARE = 0.1  # of RGB photo crops drawn from the grayscale photographs (as gray RGB)
# Rate-distortion trade-offs per latent level (lambda on 255^2 * MSE, bits per pixel): CompressAI's ladder
# (0.0018..0.18) with one level below and two above, for ~0.1 to ~3 bpp.
LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800, 0.35, 0.7)
# How often each level is drawn: the middle of the ladder more, the ends less.
LEVEL_WEIGHTS = (1, 1, 1.5, 2, 2.5, 2.5, 2, 1.5, 1, 1, 1)
LOSSLESS_LEVEL = 6  # the latent level under lossless and near-lossless pixel coding
NEAR_LOSSLESS_BINS = (5, 3, 2)  # the ladder's top rungs: pixels in bins of these widths under the pixel head
DEFAULT_QUALITY = 7  # lambda 0.0483: what compress gives with no --quality
WIDTHS = (32, 64, 128)
PROBE_KODAK = ("kodim01", "kodim07", "kodim15", "kodim23")


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"training data needs the installed package {package!r}")
    return Path(spec.origin).parent / relative


def luma(a: np.ndarray) -> np.ndarray:
    """float32 (3, H, W) on [0, 1] -> (1, H, W): ITU-R BT.601 luma rounded to 8 bits, as Pillow's "L"."""
    y = 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]
    return (np.round(y * 255) / 255).astype(np.float32)[None]


def load_bsds() -> tuple[list[np.ndarray], list[str]]:
    """BSDS500 train + test (never val: it is the benchmark's B100) as float32 (3, H, W) in [0, 1]."""
    root = Path(os.environ["AEKIT_DATA_DIR"]) / "bsds500"
    images, used = [], []
    for split in ("train", "test"):
        for path in sorted((root / split).glob("*.jpg")):
            img = Image.open(path).convert("RGB")
            images.append(np.asarray(img, np.float32).transpose(2, 0, 1) / 255)
            used.append(f"bsds500/{split}/{path.name} {img.size[0]}x{img.size[1]}")
    return images, used


def load_photos(photos_dir: Path | None) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Every photo at every scale as float32 (3, H, W) in [0, 1]; grayscale ones as gray RGB.

    ``photos_dir``: more colour photographs (every .jpg/.png in it), e.g. the folder that
    bench/photo_corpus.py makes from Debian's wallpaper packages.
    """
    color, gray, used = [], [], []
    extra = sorted(p for p in photos_dir.iterdir() if p.suffix in (".jpg", ".png")) if photos_dir else []
    named = [(f"{package}/{rel}", package_file(package, rel)) for package, rel in PHOTOS]
    named += [(f"{photos_dir.name}/{p.name}", p) for p in extra]
    gray_named = [(f"{package}/{rel}", package_file(package, rel)) for package, rel in GRAY_PHOTOS]
    for group, out in ((named, color), (gray_named, gray)):
        for name, path in group:
            img = Image.open(path).convert("RGB")
            used.append(f"{name} {img.size[0]}x{img.size[1]}")
            for s in SCALES:
                size = (round(img.size[0] * s), round(img.size[1] * s))
                im = img if s == 1.0 else img.resize(size, Image.LANCZOS)
                out.append(np.asarray(im, np.float32).transpose(2, 0, 1) / 255)  # (3, H, W)
    return color, gray, used


def load_cifar() -> np.ndarray:
    with np.load(Path(os.environ["AEKIT_DATA_DIR"]) / "cifar10_test_jpeg.npz", allow_pickle=False) as f:
        x = np.concatenate([f["x_train200_lossless"], f["x"]])  # (10200, 32, 32, 3) uint8
    return x


def load_kodak(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    with np.load(Path(os.environ["AEKIT_DATA_DIR"]) / "kodak24.npz", allow_pickle=False) as f:
        return {k: f[k] for k in names}


class Crops:
    """Random training batches: crops of the photos, or whole CIFAR images."""

    def __init__(self, crop: int, batch: int, seed: int, photos_dir: Path | None = None, gray: bool = False):
        self.color, self.gray, self.used = load_photos(photos_dir)
        bsds, used = load_bsds()
        self.color += bsds
        self.used += used
        self.cifar = load_cifar()
        self.to_gray = gray  # train on luma: every batch goes through ``luma``
        self.crop, self.batch = crop, batch
        self.rng = np.random.default_rng(seed)
        # Each photo is drawn in proportion to its number of possible crops, so big images count more.
        self.p_color = self._weights(self.color)
        self.p_gray = self._weights(self.gray)

    def _weights(self, images: list[np.ndarray]) -> np.ndarray:
        # images smaller than a crop (small photos at the smallest scale) are never drawn
        w = np.array(
            [max(0, a.shape[1] - self.crop + 1) * max(0, a.shape[2] - self.crop + 1) for a in images], float
        )
        return w / w.sum()

    def _augment(self, a: np.ndarray) -> np.ndarray:
        if self.rng.random() < 0.5:
            a = a[:, :, ::-1]
        return np.rot90(a, int(self.rng.integers(4)), axes=(1, 2))

    def photos(self) -> torch.Tensor:
        out = np.empty((self.batch, 3, self.crop, self.crop), np.float32)
        for i in range(self.batch):
            gray = self.rng.random() < GRAY_SHARE
            pool, p = (self.gray, self.p_gray) if gray else (self.color, self.p_color)
            a = pool[self.rng.choice(len(pool), p=p)]
            top = self.rng.integers(a.shape[1] - self.crop + 1)
            left = self.rng.integers(a.shape[2] - self.crop + 1)
            out[i] = self._augment(a[:, top : top + self.crop, left : left + self.crop])
        return self._channels(out)  # (B, C, crop, crop)

    def _channels(self, out: np.ndarray) -> torch.Tensor:
        if self.to_gray:
            out = np.stack([luma(a) for a in out])
        return torch.from_numpy(np.ascontiguousarray(out))

    def cifar_batch(self) -> torch.Tensor:
        n = self.batch * (self.crop // 32) ** 2  # the same number of pixels as a photo batch
        idx = self.rng.choice(len(self.cifar), n, replace=False)
        a = self.cifar[idx].transpose(0, 3, 1, 2).astype(np.float32) / 255  # (n, 3, 32, 32)
        if self.rng.random() < 0.5:
            a = a[:, :, :, ::-1]
        return self._channels(a)


# -- the model: aekit's codec network, driven directly (own loop: autocast, mixed quantisation) ----------


def autocast(x: torch.Tensor):
    """bfloat16 autocast where it is native (a GPU, or a CPU with AVX-512: convolutions ~2.5x faster);
    elsewhere float32, since emulated bfloat16 is several times slower than float32."""
    native = x.device.type == "cuda" or "AVX512" in torch.backends.cpu.get_cpu_capability()
    return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=native)


def rate_distortion(net, x: torch.Tensor, level: int, train: bool, group: torch.Tensor | None = None):
    """(bits per pixel, MSE on [0, 1], pixel-head bits per pixel or None) of x (B, C, H, W) at ``level``.

    Training: the network's own pass (aekit.codec.network.CodecNet.forward: noise for the rate, the
    synthesis fed the rounded latent); with ``group`` (B,) the pixel head's code length of that 2x2 group
    is added (lossless and near-lossless modes), its context in bins of a random width.
    """
    net.train(train)
    with autocast(x):
        out = net(x, level)
    x_hat = out.x_hat.float()
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = out.bits.float().sum() / pixels
    mse = F.mse_loss(x_hat if train else x_hat.clamp(0, 1), x)
    pix = None
    if group is not None:
        choices = torch.tensor(net.config.pixel_train_bins)
        bins = choices[torch.randint(len(choices), (x.shape[0],))].to(x.device)
        with autocast(x):
            pix = pixel_bits(net, x, x_hat, out.features.float(), group, bins)
    return bpp, mse, pix


@torch.no_grad()
def probe(model, kodak: dict[str, np.ndarray], levels, gray: bool) -> dict[str, list[float]]:
    """Mean estimated bpp and PSNR (uint8) per level on the Kodak probe images (full size; luma if gray)."""
    out = {}
    device = next(model.parameters()).device
    for q in levels:
        bpps, psnrs = [], []
        for img in kodak.values():
            a = img.transpose(2, 0, 1).astype(np.float32) / 255
            a = luma(a) if gray else a
            x = torch.from_numpy(a)[None].to(device)
            bpp, _, _ = rate_distortion(model, x, q, train=False)
            with autocast(x):
                x_hat = model(x, q).x_hat.float()
            rec = np.round(x_hat.clamp(0, 1)[0].cpu().numpy() * 255)
            mse = np.mean((rec - np.round(a * 255).astype(np.float64)) ** 2)
            bpps.append(float(bpp))
            psnrs.append(10 * math.log10(255**2 / mse))
        out[f"q{q + 1}"] = [round(float(np.mean(bpps)), 4), round(float(np.mean(psnrs)), 3)]
    model.train()
    return out


def learning_rate(args: argparse.Namespace, fraction: float, step: int) -> float:
    warm = min(1.0, (step + 1) / args.warmup)
    start = 1 - args.decay
    if fraction < start:
        return args.lr * warm
    t = min(1.0, (fraction - start) / args.decay)
    return args.lr_end + (args.lr - args.lr_end) * 0.5 * (1 + math.cos(math.pi * t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=70.0, help="wall-clock training budget")
    ap.add_argument("--gray", action="store_true", help="train the grayscale codec (luma of the same images)")
    ap.add_argument("--latent", type=int, default=160, help="M, the latent channels")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--fast-lr-scale", type=float, default=5.0, help="lr multiplier of densities and gains")
    ap.add_argument("--lr-end", type=float, default=1e-5)
    ap.add_argument("--warmup", type=int, default=300, help="steps")
    ap.add_argument("--decay", type=float, default=0.6, help="fraction of the budget spent decaying")
    ap.add_argument("--cifar-every", type=int, default=8, help="one CIFAR batch every this many steps")
    ap.add_argument("--probe-every", type=float, default=10.0, help="minutes between Kodak probes")
    ap.add_argument("--checkpoint-every", type=float, default=4.0, help="minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/photo-run"))
    ap.add_argument("--resume", action="store_true", help="go on from --run-dir's checkpoint")
    ap.add_argument("--init", type=Path, help="start from this checkpoint's weights (new schedule, new Adam)")
    ap.add_argument("--stop-after", type=float, help="minutes: leave this invocation early (then --resume)")
    ap.add_argument("--photos-dir", type=Path, help="more photographs: bench/photo_corpus.py's folder")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--pixel-every", type=int, default=16, help="train the lossless head every this many steps"
    )
    ap.add_argument("--out", type=Path, default=None, help="write the .aek here (default: none)")
    ap.add_argument("--export", action="store_true", help="only turn --run-dir's checkpoint into --out")
    ap.add_argument("--log", type=Path, help="with --export: the training run's log (its JSON lines)")
    ap.add_argument("--train-command", default="", help="with --export: the command that trained it")
    ap.add_argument("--note", default="", help="with --export: what else the results should say")
    args = ap.parse_args()
    if args.export:
        if args.out is None or args.log is None:
            raise SystemExit("--export needs --out and --log")
        export(args)
        return

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    data = Crops(args.crop, args.batch, args.seed, args.photos_dir, gray=args.gray)
    kodak = load_kodak(PROBE_KODAK)
    model = build_model(args).to(device)
    model.train()
    # The densities and the gains get a larger step: each level's bottleneck and gain only train on that
    # level's steps, and at the transforms' rate they would need far more steps than the budget holds.
    fast = [p for n, p in model.named_parameters() if n.startswith("bottlenecks.") or "gain" in n]
    slow = [p for n, p in model.named_parameters() if not (n.startswith("bottlenecks.") or "gain" in n)]
    opt = torch.optim.Adam([{"params": slow, "scale": 1.0}, {"params": fast, "scale": args.fast_lr_scale}])
    weights = np.array(LEVEL_WEIGHTS, float) / sum(LEVEL_WEIGHTS)
    rng = np.random.default_rng(args.seed + 1)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.run_dir / "checkpoint.pt"
    step, elapsed, log = 0, 0.0, []
    warm_from = 0  # the step the warm-up counts from: a fresh Adam warms up again
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=True, map_location=device)  # our own file, written below
        model.load_state_dict(ck["model"])
        step, elapsed = int(ck["step"]), float(ck["elapsed"])
        log = ck.get("log", [])
        if "opt" in ck:
            opt.load_state_dict(ck["opt"])
        else:  # a weights-only copy (weights.pt), e.g. carried to a new machine
            warm_from = step
    elif args.init is not None:
        model.load_state_dict(torch.load(args.init, weights_only=True, map_location=device)["model"])
    budget = args.minutes * 60
    started = time.time()
    t0 = time.time() - elapsed
    last_ckpt = last_probe = time.time()
    ema: dict[int, list[float]] = {}
    pix_ema = None
    print(json.dumps({"photos": data.used, "params": sum(p.numel() for p in model.parameters())}), flush=True)
    while True:
        elapsed = time.time() - t0
        if elapsed >= budget:
            break
        if args.stop_after is not None and time.time() - started > args.stop_after * 60:
            save_checkpoint(ckpt_path, model, opt, step, elapsed, log)
            print(json.dumps({"stopped": step, "min": round(elapsed / 60, 1)}), flush=True)
            return
        lr = learning_rate(args, elapsed / budget, step - warm_from)
        for g in opt.param_groups:
            g["lr"] = lr * g["scale"]
        q = int(rng.choice(len(LAMBDAS), p=weights))
        x = data.cifar_batch() if step % args.cifar_every == args.cifar_every - 1 else data.photos()
        x = x.to(device, non_blocking=True)
        group = None
        if step % args.pixel_every == args.pixel_every // 2:  # the lossless head, at its own level
            q = LOSSLESS_LEVEL
            group = torch.from_numpy(rng.integers(GROUPS, size=x.shape[0])).to(device)
        bpp, mse, pix = rate_distortion(model, x, q, train=True, group=group)
        loss = bpp + LAMBDAS[q] * 255**2 * mse + (pix if pix is not None else 0.0)
        if pix is not None:
            pix_ema = pix.item() if pix_ema is None else 0.95 * pix_ema + 0.05 * pix.item()
        if not torch.isfinite(loss):
            raise SystemExit(f"loss is {float(loss)} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        e = ema.setdefault(q, [bpp.item(), mse.item()])
        e[0], e[1] = 0.98 * e[0] + 0.02 * bpp.item(), 0.98 * e[1] + 0.02 * mse.item()
        step += 1
        now = time.time()
        if step % 100 == 0:
            train = {
                f"q{k + 1}": [round(v[0], 3), round(-10 * math.log10(v[1] + 1e-12), 2)]
                for k, v in ema.items()
            }
            row = {
                "step": step,
                "min": round(elapsed / 60, 1),
                "lr": lr,
                "train": train,
                "pixel_bpp": pix_ema,
            }
            print(json.dumps(row), flush=True)
        if now - last_probe > args.probe_every * 60:
            kodak4 = probe(model, kodak, (4, 6), args.gray)
            row = {"step": step, "min": round(elapsed / 60, 1), "kodak4": kodak4}
            log.append(row)
            print(json.dumps(row), flush=True)
            last_probe = time.time()
            t0 += last_probe - now  # probes do not eat the training budget
        if now - last_ckpt > args.checkpoint_every * 60:
            save_checkpoint(ckpt_path, model, opt, step, time.time() - t0, log)
            last_ckpt = time.time()
    save_checkpoint(ckpt_path, model, opt, step, time.time() - t0, log)
    kodak4 = probe(model, kodak, range(len(LAMBDAS)), args.gray)
    final = {"step": step, "min": round((time.time() - t0) / 60, 1), "kodak4": kodak4}
    log.append(final)
    print(json.dumps(final), flush=True)
    if args.out is not None:
        args.train_command = "PYTHONPATH=src .venv/bin/python " + " ".join(sys.argv)
        args.note = ""
        args.log = args.run_dir / "log.jsonl"
        args.log.write_text("".join(json.dumps(row) + "\n" for row in log))
        export(args)


def save_checkpoint(path: Path, model, opt, step: int, elapsed: float, log: list) -> None:
    """checkpoint.pt (with Adam's state) and weights.pt beside it (without: small enough to carry)."""
    state = {"model": model.state_dict(), "step": step, "elapsed": elapsed, "log": log}
    for name, extra in (("weights.pt", {}), (path.name, {"opt": opt.state_dict()})):
        tmp = path.with_name(name + ".tmp")
        torch.save(state | extra, tmp)
        os.replace(tmp, path.with_name(name))


def build_model(args: argparse.Namespace) -> CodecNet:
    lossy = tuple((level, 0) for level in range(len(LAMBDAS)))
    config = CodecNetConfig(
        channels=1 if args.gray else 3,
        hidden=WIDTHS[-1],
        widths=WIDTHS,
        latent=args.latent,
        stages=4,
        kernel=5,
        prior="hyperprior",
        lambdas=LAMBDAS,
        qualities=lossy + tuple((LOSSLESS_LEVEL, b) for b in NEAR_LOSSLESS_BINS),
        default_quality=DEFAULT_QUALITY,
        lossless_level=LOSSLESS_LEVEL,
        pixel_train_bins=(1, *sorted(NEAR_LOSSLESS_BINS)),
        extra={
            "trained_on": "BSDS500 train + test, Debian's photographic wallpapers (bench/photo_corpus.py), "
            "the sample photographs of scikit-image, matplotlib and scikit-learn, and CIFAR-10"
            + (" (their luma)" if args.gray else "")
            + "; never Kodak or BSDS500 val"
        },
    )
    return CodecNet(config)


def export(args: argparse.Namespace) -> None:
    """The run's checkpoint -> the .aek (float16 weights) + bench/results/train_photo_codec.{json,md}."""
    from aekit.codec.codec import ImageCodec

    torch.set_num_threads(1)
    ck = torch.load(args.run_dir / "checkpoint.pt", weights_only=True)  # our own file
    net = build_model(args)
    net.load_state_dict(ck["model"])
    net.eval()
    data = Crops(args.crop, 16, seed=12345, photos_dir=args.photos_dir, gray=args.gray)
    codec = ImageCodec.from_network(net)  # the lossless level stays the one the pixel head trained at
    codec.save(args.out, weights="float16")  # rounds the weights: typicality is measured with those
    codec = ImageCodec.load(args.out)
    codec.random_state = 0
    codec.fit_typicality([to_uint8(a, args.gray) for a in data.color])  # the training photos (up to 256)
    codec.save(args.out, weights="float16")
    log = [json.loads(line) for line in args.log.read_text().splitlines() if line.startswith('{"step"')]
    probes = [row for row in log if "kodak4" in row]
    train_rows = [row for row in log if "train" in row]
    result = {
        "command": args.train_command,
        "export_command": "PYTHONPATH=src .venv/bin/python " + " ".join(_without_texts(sys.argv)),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch_threads": 1,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "note": "2-core VM shared with other jobs (load 2-6): wall times include contention",
        },
        "steps": int(ck["step"]),
        "train_minutes": round(float(ck["elapsed"]) / 60, 1),
        "data": {
            "photos": data.used,
            "scales": list(SCALES),
            "gray_share": GRAY_SHARE,
            "cifar": "cifar10_test_jpeg.npz: x (10,000 JPEG q75 test images) + x_train200_lossless",
            "kodak": "never trained on; 4 images ("
            + ", ".join(PROBE_KODAK)
            + ") measured for the progress log",
        },
        "recipe": {
            "crop": args.crop,
            "batch": args.batch,
            "lr": args.lr,
            "lr_end": args.lr_end,
            "decay_fraction": args.decay,
            "cifar_every": args.cifar_every,
            "pixel_every": args.pixel_every,
            "lambdas": list(LAMBDAS),
            "level_weights": list(LEVEL_WEIGHTS),
            "autocast": "bfloat16 (convolutions); rate and distortion in float32",
        },
        "model_config": net.config.to_dict(),
        "params": sum(p.numel() for p in net.parameters()),
        "file": str(args.out.relative_to(ROOT)) if args.out.is_relative_to(ROOT) else str(args.out),
        "file_bytes": args.out.stat().st_size,
        "fingerprint": codec.fingerprint_.hex(),
        "notes": args.note,
        "probes": probes,
        "last_train_row": train_rows[-1] if train_rows else None,
    }
    out = RESULTS / ("train_photo_codec_gray" if args.gray else "train_photo_codec")
    write_text_atomic(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    print(json.dumps({k: result[k] for k in ("steps", "train_minutes", "file_bytes", "fingerprint")}))


def to_uint8(a: np.ndarray, gray: bool) -> np.ndarray:
    """A training photo float32 (3, H, W) on [0, 1] -> uint8 (H, W, 3), or its luma (H, W)."""
    a = luma(a)[0] if gray else a.transpose(1, 2, 0)
    return np.round(a * 255).astype(np.uint8)


def _without_texts(argv: list[str]) -> list[str]:
    """argv with the values of --train-command and --note elided (the results hold them in full)."""
    out = []
    for i, arg in enumerate(argv):
        skip = i > 0 and argv[i - 1] in ("--train-command", "--note")
        out.append('"..."' if skip else arg)
    return out


def markdown(r: dict) -> str:
    lines = [
        "# Training the built-in photo codec",
        "",
        "Trained by:",
        "",
        *[f"    {part.strip()}" for part in r["command"].split(" ; then ")],
        "",
        f"then exported by `{r['export_command']}`.",
        "",
        f"{r['date']}, {r['machine']['cpu']}, {r['machine']['cores']} cores, torch {r['machine']['torch']} "
        f"with 1 thread. {r['machine']['note']}.",
        "",
        f"{r['steps']} steps in {r['train_minutes']} min; {r['params']:,} parameters; "
        f"`{r['file']}` {r['file_bytes']:,} bytes (float16 weights), fingerprint `{r['fingerprint']}`.",
        "",
        "Data (never Kodak): "
        + "; ".join(r["data"]["photos"])
        + f" at scales {r['data']['scales']}; "
        + r["data"]["cifar"]
        + ".",
        "",
    ]
    if r.get("notes"):
        lines += [r["notes"], ""]
    if not r["probes"]:
        return "\n".join(lines) + "\n"
    lines += [
        "Progress on four Kodak images (estimated bits from the model's likelihoods, RGB PSNR):",
        "",
        "| step | min | " + " | ".join(f"{q} bpp / dB" for q in r["probes"][-1]["kodak4"]) + " |",
        "|---|---|" + "---|" * len(r["probes"][-1]["kodak4"]),
    ]
    for row in r["probes"]:
        cells = [
            f"{row['kodak4'][q][0]:.3f} / {row['kodak4'][q][1]:.2f}" if q in row["kodak4"] else ""
            for q in r["probes"][-1]["kodak4"]
        ]
        lines.append(f"| {row['step']} | {row['min']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
