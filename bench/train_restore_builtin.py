"""Train the built-in restoration models (``aekit restore denoise|upscale|inpaint|colorize ...``).

One resumable run per model: a checkpoint every few minutes in --run-dir, so a stopped run goes on where it
was with --resume (sessions on this 2-core CPU are three hours; a model wants more). Then --export writes
the shipped file (float16 weights) and the training record in bench/results/train_restore_<model>.md.

    PYTHONPATH=src .venv/bin/python bench/train_restore_builtin.py --model denoise --steps 4000 \\
        --minutes 80 --run-dir /work/restore-runs/denoise --photos-dir /work/photo-corpus
    ... the same with --resume (and a larger --steps to train on: the cosine restarts from there)
    PYTHONPATH=src .venv/bin/python bench/train_restore_builtin.py --model denoise --export \\
        --run-dir /work/restore-runs/denoise          # -> src/aekit/restore/weights/denoise.aek + record

    PYTHONPATH=src .venv/bin/python bench/train_restore_builtin.py --model denoise --steps 20 \\
        --run-dir /tmp/smoke --crop 64 --batch 2      # a smoke run

Training images (nothing is copied into the repository, nothing fetched at training time):
  - ``$AEKIT_DATA_DIR/bsds500/train`` and ``test``: 400 photographs (481x321), less the four probe images
    below; ``bsds500/val`` (B100) and Kodak are the benchmark's test sets and are never read here;
  - the Debian wallpaper photographs made by ``bench/photo_corpus.py`` (--photos-dir), at scales 1 and 0.5;
  - CIFAR-10 (``cifar10_test_jpeg.npz``: 10,000 JPEG test images + 200 lossless ones), whole 32x32 images,
    in a share of the batches (most for colorize, whose colours are about what things are).
Random crops, flips and quarter turns; each model's degradation is its task's own (aekit.restore.tasks), so
what a model trains on is exactly what ``ImageRestorer.restore`` gives it. Gray images (a batch's worth,
``gray_share`` of the time) teach the RGB models to restore grayscale photographs given as three equal
channels, which is how the built-ins take them.

The probe (logged every --probe-every minutes) is four BSDS500 test images held out of training; no choice
was made on Kodak or B100.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine import git_version, machine  # bench/machine.py: the script's folder is on sys.path
from PIL import Image

from aekit.atomic import write_text_atomic
from aekit.restore.network import RestorationNetConfig, RestorationUNet, luma
from aekit.restore.restorer import ImageRestorer, run_tiled  # up front: sources may change under a long run
from aekit.restore.tasks import TASKS, Settings, quantize, training_input

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
WEIGHTS = ROOT / "src" / "aekit" / "restore" / "weights"
PROBE = ("100007.jpg", "101027.jpg", "103006.jpg", "104010.jpg")  # bsds500/test, held out of training


@dataclass(frozen=True)
class Recipe:
    task: str
    settings: Settings
    summary: str
    gray_share: float = 0.15  # batches of gray photographs (as three equal channels)
    cifar_share: float = 0.05  # batches of whole CIFAR-10 images
    loss: str = "l1"
    net: dict = field(
        default_factory=lambda: {"width": 64, "depth": 2, "blocks": 2, "residual": True, "unshuffle": 2}
    )


RECIPES = {
    "denoise": Recipe(
        "denoise",
        Settings(noise_sigma=55 / 255, blind=True, grayscale=True),
        "blind Gaussian denoising, sigma 0-55 on the 0-255 scale, estimated from the image or given",
    ),
    "upscale-x2": Recipe("upscale", Settings(scale=2, grayscale=True), "2x enlargement (corrects bicubic)"),
    "upscale-x4": Recipe("upscale", Settings(scale=4, grayscale=True), "4x enlargement (corrects bicubic)"),
    "inpaint": Recipe(
        "inpaint",
        Settings(mask="mixed", grayscale=True, fill="smooth"),
        "fills masked pixels (trained on boxes and strokes)",
    ),
    "colorize": Recipe(
        "colorize", Settings(), "grayscale -> colour, keeping the luminance", gray_share=0.0, cifar_share=0.3
    ),
}


# -- data ----------------------------------------------------------------------------------------------------


def load_photos(photos_dir: Path | None) -> tuple[list[np.ndarray], list[str]]:
    """Every training photograph as uint8 (H, W, 3), and its name with its size for the record."""
    data = Path(os.environ["AEKIT_DATA_DIR"]) / "bsds500"
    paths = [p for split in ("train", "test") for p in sorted((data / split).glob("*.jpg"))]
    paths = [p for p in paths if not (p.parent.name == "test" and p.name in PROBE)]
    scales = {p: (1.0,) for p in paths}
    if photos_dir is not None:
        extra = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        paths += extra
        scales.update({p: (1.0, 0.5) for p in extra})
    images, used = [], []
    for p in paths:
        img = Image.open(p).convert("RGB")
        used.append(f"{p.parent.parent.name}/{p.parent.name}/{p.name} {img.size[0]}x{img.size[1]}")
        for s in scales[p]:
            im = (
                img
                if s == 1.0
                else img.resize((round(img.size[0] * s), round(img.size[1] * s)), Image.LANCZOS)
            )
            images.append(np.asarray(im))
    return images, used


def load_cifar() -> np.ndarray:
    with np.load(Path(os.environ["AEKIT_DATA_DIR"]) / "cifar10_test_jpeg.npz", allow_pickle=False) as f:
        return np.concatenate([f["x_train200_lossless"], f["x"]])  # (10200, 32, 32, 3) uint8


def load_probe() -> list[np.ndarray]:
    folder = Path(os.environ["AEKIT_DATA_DIR"]) / "bsds500" / "test"
    return [np.asarray(Image.open(folder / name).convert("RGB")) for name in PROBE]


class Batches:
    """Random training batches of clean images (B, 3, H, W) in [0, 1]."""

    def __init__(self, recipe: Recipe, crop: int, batch: int, seed: int, photos_dir: Path | None):
        self.photos, self.used = load_photos(photos_dir)
        self.cifar = load_cifar()
        self.recipe, self.crop, self.batch = recipe, crop, batch
        self.rng = np.random.default_rng(seed)
        sizes = np.array([(a.shape[0] - crop + 1) * (a.shape[1] - crop + 1) for a in self.photos], float)
        self.p = sizes.clip(min=0) / sizes.clip(min=0).sum()  # each photo in proportion to its crops

    def next(self) -> torch.Tensor:
        if self.rng.random() < self.recipe.cifar_share:
            n = self.batch * (self.crop // 32) ** 2  # the same number of pixels as a photo batch
            x = self.cifar[self.rng.choice(len(self.cifar), n, replace=False)]  # (n, 32, 32, 3)
        else:
            x = np.empty((self.batch, self.crop, self.crop, 3), np.uint8)
            for i in range(self.batch):
                a = self.photos[self.rng.choice(len(self.photos), p=self.p)]
                top = self.rng.integers(a.shape[0] - self.crop + 1)
                left = self.rng.integers(a.shape[1] - self.crop + 1)
                x[i] = a[top : top + self.crop, left : left + self.crop]
        x = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W)
        if self.rng.random() < 0.5:
            x = x.flip(-1)
        x = torch.rot90(x, int(self.rng.integers(4)), dims=(-2, -1))
        if self.rng.random() < self.recipe.gray_share:
            x = quantize(luma(x)).expand(-1, 3, -1, -1)
        return x.contiguous()


def build(recipe: Recipe) -> RestorationUNet:
    task = TASKS[recipe.task]
    config = RestorationNetConfig(
        in_channels=task.observed_channels(3) + task.extra_inputs(recipe.settings),
        out_channels=3,
        base=task.base,
        keep_luma=task.keep_luma,
        keep_known=task.keep_known,
        loss=recipe.loss,
        **recipe.net,
    )
    return RestorationUNet(config)


# -- the probe -----------------------------------------------------------------------------------------------


@torch.no_grad()
def probe(model: RestorationUNet, recipe: Recipe, images: list[np.ndarray]) -> dict[str, float]:
    """PSNR (dB) of restored vs the task's input on the held-out probe images, a fixed degradation."""
    task, s = TASKS[recipe.task], recipe.settings
    gen = torch.Generator().manual_seed(0)
    model.eval()
    got, given = [], []
    for img in images:
        m = model.stride * recipe.settings.scale
        img = img[: img.shape[0] // m * m, : img.shape[1] // m * m]
        device = next(model.parameters()).device
        clean = torch.from_numpy(img).permute(2, 0, 1)[None].float().to(device) / 255
        obs = task.observe(clean, s, gen)
        if recipe.task == "denoise":  # a fixed level: 25, quantized, estimated
            noise = torch.randn(clean.shape, generator=gen).to(device) * 25 / 255
            obs = dataclasses.replace(obs, image=quantize(clean + noise), sigma=None)
        x = task.prepare(obs, s)
        y = run_tiled(model, x, 512).clamp(0, 1)
        got.append(_psnr(y, clean))
        given.append(
            _psnr(x[:, :3].clamp(0, 1) if recipe.task != "colorize" else x[:, :1].expand_as(clean), clean)
        )
    model.train()
    return {"probe_db": round(float(np.mean(got)), 3), "input_db": round(float(np.mean(given)), 3)}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(torch.mean((torch.round(a * 255) - torch.round(b * 255)) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-10))


# -- the loop ------------------------------------------------------------------------------------------------


def learning_rate(args: argparse.Namespace, step: int) -> float:
    warm = min(1.0, (step + 1) / args.warmup)
    t = min(1.0, step / args.steps)
    return warm * (args.lr_end + (args.lr - args.lr_end) * 0.5 * (1 + math.cos(math.pi * t)))


def save_checkpoint(path: Path, model, opt, step: int, elapsed: float, log: list) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(
        {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed, "log": log},
        tmp,
    )
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> None:
    recipe = RECIPES[args.model]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.run_dir / "checkpoint.pt"
    model = build(recipe).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, elapsed, log = 0, 0.0, []
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=True, map_location=device)  # our own file, written below
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed, log = int(ck["step"]), float(ck["elapsed"]), ck["log"]
    elif ckpt_path.exists():
        raise SystemExit(f"{ckpt_path} exists: add --resume to go on from it, or choose another --run-dir")
    data = Batches(recipe, args.crop, args.batch, args.seed + step, args.photos_dir)
    probe_images = load_probe()
    write_text_atomic(args.run_dir / "images.json", json.dumps(data.used, indent=0))
    print(
        json.dumps(
            {
                "model": args.model,
                "step": step,
                "photos": len(data.used),
                "params": sum(p.numel() for p in model.parameters()),
            }
        ),
        flush=True,
    )
    model.train()
    started = time.time()
    last_ckpt = last_probe = started
    ema = None
    while step < args.steps and time.time() - started < args.minutes * 60:
        lr = learning_rate(args, step)
        for g in opt.param_groups:
            g["lr"] = lr
        target = data.next().to(device, non_blocking=True)
        x = training_input(TASKS[recipe.task], target, recipe.settings)  # degraded where the model is
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            y = model(x).recon.float()
        loss = F.l1_loss(y, target) if recipe.loss == "l1" else F.mse_loss(y, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        value = loss.item()
        ema = value if ema is None else 0.98 * ema + 0.02 * value
        now = time.time()
        if now - last_probe > args.probe_every * 60 or step == args.steps:
            entry = {
                "step": step,
                "minutes": round((elapsed + now - started) / 60, 2),
                "lr": lr,
                "loss": round(ema, 6),
                **probe(model, recipe, probe_images),
            }
            log.append(entry)
            print(json.dumps(entry), flush=True)
            last_probe = time.time()
        if now - last_ckpt > args.checkpoint_every * 60:
            save_checkpoint(ckpt_path, model, opt, step, elapsed + now - started, log)
            last_ckpt = now
    save_checkpoint(ckpt_path, model, opt, step, elapsed + time.time() - started, log)
    print(
        json.dumps({"stopped": step, "minutes": round((elapsed + time.time() - started) / 60, 1)}), flush=True
    )


# -- colour strength ----------------------------------------------------------------------------------------

CHROMA_GAINS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
CHROMA_PSNR_COST = 0.25  # dB of PSNR the colorizer may give up for stronger colour


def colourfulness(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B,): Hasler & Suesstrunk (2003), on the 0-255 scale."""
    r, g, b = (x[:, i] * 255 for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = torch.hypot(rg.flatten(1).std(1), yb.flatten(1).std(1))
    return spread + 0.3 * torch.hypot(rg.flatten(1).mean(1), yb.flatten(1).mean(1))


@torch.no_grad()
def calibrate_chroma(model: RestorationUNet, recipe: Recipe, photos_dir: Path | None) -> tuple[float, list]:
    """The largest chroma gain that costs at most CHROMA_PSNR_COST dB on 64 training crops (never Kodak)."""
    data = Batches(dataclasses.replace(recipe, cifar_share=0.0, gray_share=0.0), 96, 16, 12345, photos_dir)
    clean = torch.cat([data.next() for _ in range(4)])  # (64, 3, 96, 96)
    x = training_input(TASKS[recipe.task], clean, recipe.settings)
    model.eval()
    table = []
    for gain in CHROMA_GAINS:
        model.config.chroma_gain = gain
        y = torch.cat([model(b).recon.clamp(0, 1) for b in x.split(16)])
        mse = torch.mean((torch.round(y * 255) - torch.round(clean * 255)) ** 2)
        ratio = float(colourfulness(y).mean() / colourfulness(clean).mean())
        table.append(
            {"gain": gain, "psnr": round(10 * math.log10(255**2 / float(mse)), 3), "colour": round(ratio, 3)}
        )
    best = max(e["gain"] for e in table if e["psnr"] >= table[0]["psnr"] - CHROMA_PSNR_COST)
    model.config.chroma_gain = best
    return best, table


# -- export --------------------------------------------------------------------------------------------------


def export(args: argparse.Namespace) -> None:
    recipe = RECIPES[args.model]
    ck = torch.load(args.run_dir / "checkpoint.pt", weights_only=True, map_location="cpu")
    model = build(recipe)
    model.load_state_dict(ck["model"])
    chroma = None
    if recipe.task == "colorize":
        gain, table = calibrate_chroma(model, recipe, args.photos_dir)
        chroma = {"chosen": gain, "max_psnr_cost_db": CHROMA_PSNR_COST, "table": table}
        print(json.dumps({"chroma_gain": chroma}), flush=True)
    est = ImageRestorer(
        task=recipe.task,
        scale=recipe.settings.scale,
        noise_sigma=recipe.settings.noise_sigma,
        mask=recipe.settings.mask,
        loss=recipe.loss,
        **{k: v for k, v in recipe.net.items() if k in ("width", "depth", "blocks")},
    )
    est.task_, est.settings_, est.channels_ = TASKS[recipe.task], recipe.settings, 3
    est.model_, est.device_ = model.eval(), "cpu"
    est.history_ = [{"step": e["step"], "loss": e["loss"]} for e in ck["log"]]
    out = args.out or WEIGHTS / f"{args.model}.aek"
    out.parent.mkdir(parents=True, exist_ok=True)
    est.save(out, weights="float16")
    used = json.loads((args.run_dir / "images.json").read_text())
    doc = {
        "model": args.model,
        "summary": recipe.summary,
        "file": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
        "bytes": out.stat().st_size,
        "steps": int(ck["step"]),
        "hours": round(float(ck["elapsed"]) / 3600, 2),
        "recipe": {
            "task": recipe.task,
            "settings": dataclasses.asdict(recipe.settings),
            "net": recipe.net,
            "loss": recipe.loss,
            "gray_share": recipe.gray_share,
            "cifar_share": recipe.cifar_share,
        },
        "commands": args.train_command,
        "machine": {**machine(), "device": args.trained_on},
        "date": datetime.date.today().isoformat(),
        "version": git_version(),
        "log": ck["log"],
        "chroma_gain": chroma,
        "training_images": [
            "cifar10_test_jpeg.npz: x (10000 JPEG test images) + x_train200_lossless (200)",
            *used,
        ],
        "never_trained_on": "kodak24.npz, bsds500/val (B100); probe (logged only): "
        + ", ".join(f"bsds500/test/{p}" for p in PROBE),
    }
    lines = [
        f"# Built-in restoration model `{args.model}`",
        "",
        f"{recipe.summary}. File `{doc['file']}` ({doc['bytes'] / 1e6:.1f} MB, float16 weights), "
        f"{doc['steps']} steps in {doc['hours']} h on {doc['machine']['cpu']} ({args.trained_on}), "
        f"{doc['date']}, commit {doc['version']}.",
        "",
        "Commands (bench/train_restore_builtin.py):",
        "",
        *[f"    {c}" for c in args.train_command],
        "",
        "Probe (4 held-out BSDS500 test images; logged, never used to choose): last entries",
        "",
        "| step | minutes | lr | loss | probe dB | input dB |",
        "|---|---|---|---|---|---|",
        *[
            f"| {e['step']} | {e['minutes']} | {e['lr']:.2e} | {e['loss']} | {e['probe_db']} "
            f"| {e['input_db']} |"
            for e in ck["log"][-12:]
        ],
        "",
        *(
            [
                f"Chroma gain {chroma['chosen']}: the largest that costs at most {CHROMA_PSNR_COST} dB of "
                "PSNR on 64 training crops (gain, PSNR, colourfulness / the originals'): "
                + "; ".join(f"{e['gain']}: {e['psnr']} dB, {e['colour']:.0%}" for e in chroma["table"]),
                "",
            ]
            if chroma
            else []
        ),
        f"Training images: {len(used)} photographs (listed in train_restore_{args.model}.json) and CIFAR-10. "
        "Never trained on Kodak or bsds500/val.",
        "",
    ]
    from machine import save_results

    save_results(RESULTS, f"train_restore_{args.model}", doc, "\n".join(lines))
    print(f"wrote {out} ({doc['bytes']:,} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(RECIPES), required=True)
    ap.add_argument("--steps", type=int, default=4000, help="the schedule's length (cosine to --lr-end)")
    ap.add_argument("--minutes", type=float, default=80.0, help="leave this invocation after this long")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--lr-end", type=float, default=1e-5)
    ap.add_argument("--warmup", type=int, default=100, help="steps")
    ap.add_argument("--probe-every", type=float, default=8.0, help="minutes")
    ap.add_argument("--checkpoint-every", type=float, default=4.0, help="minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="go on from --run-dir's checkpoint")
    ap.add_argument("--photos-dir", type=Path, help="more photographs: bench/photo_corpus.py's folder")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0))))
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPUs; slower on CPUs without it)")
    ap.add_argument("--export", action="store_true", help="only turn --run-dir's checkpoint into the .aek")
    ap.add_argument("--out", type=Path, help="with --export: where (default src/aekit/restore/weights/)")
    ap.add_argument("--train-command", action="append", default=[], help="with --export: what trained it")
    ap.add_argument("--trained-on", default="CPU, 2 cores", help="with --export: the machine in words")
    args = ap.parse_args()
    if args.export:
        export(args)
    else:
        train(args)


if __name__ == "__main__":
    sys.exit(main())
