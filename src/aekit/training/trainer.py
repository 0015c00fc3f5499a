"""One trainer for every family: batches from any ``TrainData`` (views of a tensor in memory, the fast
path, or files read lazily), validation, early stopping, a learning-rate schedule, per-epoch metrics and
atomic checkpoints that a killed run resumes from; under torchrun, DDP over several processes.

Randomness (data order, noise, VAE samples) is re-seeded from (seed, epoch, rank) at the start of every
epoch, so a resumed run draws exactly what the uninterrupted run would have drawn and ends bit-identical.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aekit import losses, runfolder, tensorfile
from aekit.atomic import remove_stale
from aekit.errors import ConfigError, ModelFileError, TrainingError
from aekit.noise import NOISES
from aekit.training import distributed
from aekit.training.config import TrainConfig
from aekit.training.data import TensorData, TrainData, as_train_data
from aekit.training.distributed import Group
from aekit.training.plateau import Plateau
from aekit.training.progress import Progress

CHECKPOINT = runfolder.CHECKPOINT
_STATE = "s"  # the checkpoint's tensors are named s.model.<weight>, s.optimizer.state.<i>.<moment>, ...
# What a checkpoint's training state holds besides the weights, and the JSON type of each.
_STATE_TYPES = {"epoch": int, "history": list, "best": (int, float), "bad_epochs": int, "settings": dict}
METRICS = runfolder.METRICS
EVAL_BATCH = 1024
PLATEAU_WARMUP = 100  # steps of linear warm-up of the "plateau" schedule (at most its first epoch)


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 12345) % (2**63 - 1)


class Trainer:
    def __init__(self, config: TrainConfig):
        config.validate()
        self.config = config
        self._group: Group | None = None  # the processes of the current fit

    # -- the loop -------------------------------------------------------------------------------------
    def fit(
        self, model: nn.Module, train: Tensor | TrainData, val: Tensor | TrainData | None = None
    ) -> list[dict[str, Any]]:
        """Train ``model`` in place on ``train`` (already scaled: a tensor on any device, or any
        ``TrainData``); return the history. Under torchrun every process runs this with the same data and
        settings: DDP keeps their weights equal, and only rank 0 writes the run folder and the progress bar.
        """
        cfg = self.config
        group = distributed.join(cfg.device, cfg.batch_size)
        self._group = group
        device = group.device
        model.to(device)
        train = as_train_data(train, device)
        val = as_train_data(val, device) if val is not None and len(val) else None
        n = len(train)
        steps = math.ceil(n / cfg.batch_size)
        # The fused Adam kernel updates all parameters in one pass; on the CPU it makes a step of a dense
        # model ~30% faster than torch's default. Devices without it use the multi-tensor version.
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
        optimizer = torch.optim.Adam(
            _param_groups(model, cfg.lr, cfg.lr_scales), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused
        )
        scheduler = _schedule(cfg, optimizer, steps)
        state = {
            "epoch": 0,
            "history": [],
            "best": math.inf,
            "bad_epochs": 0,
            "best_weights": None,
            "settings": self._run_settings(n),
        }
        if cfg.resume:  # every process reads rank 0's checkpoint: they all continue from the same state
            state = self._load_checkpoint(model, optimizer, scheduler)
            self._check_same_run(state["settings"], self._run_settings(n))
        net = group.wrap(model)  # after loading: DDP starts every process from rank 0's weights
        objective = cfg.objective or losses.objective
        corrupt = NOISES[cfg.noise] if cfg.noise else None
        low, high = cfg.value_range
        may_stop = (val is not None and cfg.patience is not None) or cfg.schedule == "plateau"
        progress = Progress(cfg.epochs, steps, enabled=cfg.verbose > 0 and group.is_main, may_stop=may_stop)
        made = self._start_run()
        try:
            for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
                order_seed = epoch_seed(cfg.seed, epoch)
                # Noise and sampling draw from the global stream, each process from its own, so that the
                # processes corrupt their slices of a batch independently.
                torch.manual_seed(order_seed + group.rank)
                if isinstance(train, TensorData):
                    # Before TrainData the data order came from this stream, and noise and sampling
                    # followed it: drawing that permutation here too keeps every seed's models as they were.
                    # Its result is unused on purpose; removing it shifts the noise and sampling streams.
                    torch.randperm(n, device=device)
                last_val = state["history"][-1].get("val_loss") if state["history"] else None
                progress.start_epoch(epoch, "-" if last_val is None else f"{last_val:.5f}")
                started = time.perf_counter()
                net.train()
                sums: dict[str, Tensor] = {}
                seen = 0
                batches = train.batches(cfg.batch_size, order_seed, group.rank, group.world)
                for b, batch in enumerate(batches):
                    batch = batch.to(device, non_blocking=True)  # a no-op for TensorData
                    rows = len(batch)
                    if rows == 0:
                        # This process's slice of a last, short batch is empty, but DDP needs every
                        # process in every step: run one dummy row and give its loss weight 0.
                        batch = batch.new_zeros((1, *batch.shape[1:]))
                    inputs, target = cfg.pairs(batch) if cfg.pairs else (batch, batch)
                    if corrupt:
                        inputs = corrupt(inputs, cfg.noise_level, low, high)
                    parts = objective(model, net(inputs), target)
                    loss = parts["loss"]
                    if group.world > 1:
                        # DDP averages gradients over the processes; weighting each process's mean loss
                        # by its share of the global batch makes that average the global batch's mean.
                        loss = loss * (rows * group.world / min(cfg.batch_size, n - b * cfg.batch_size))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v.detach() * rows
                    seen += rows
                    if progress.enabled and (b % 20 == 19 or b == steps - 1):
                        progress.advance(min(20, b % 20 + 1), float(sums["loss"]) / max(seen, 1))
                record: dict[str, Any] = {"epoch": epoch}
                record.update(self._means(sums, n))
                if not math.isfinite(record["loss"]):
                    raise TrainingError(
                        f"the training loss became {record['loss']} in epoch {epoch}. "
                        "Lower the learning rate "
                        f"(now lr={cfg.lr:g}; try {cfg.lr / 10:g}), check the data for NaN or huge values, "
                        "or use scaling='standard'."
                    )
                if val is not None:
                    scores = _evaluate(model, val, EVAL_BATCH, cfg.pairs, cfg.seed, group, objective)
                    record.update({f"val_{k}": v for k, v in scores.items()})
                record["lr"] = optimizer.param_groups[0]["lr"]
                record["seconds"] = time.perf_counter() - started
                state["history"].append(record)
                stop = self._early_stopping(model, state, record)  # the same all-reduced record everywhere
                if isinstance(scheduler, Plateau):  # lowers the rate on a stall; after its last cut, ends
                    scheduler.end_epoch(record.get("val_loss", record["loss"]))
                    stop = stop or scheduler.done
                state["epoch"] = epoch
                progress.end_epoch(record)
                self._write_epoch(model, optimizer, scheduler, state)
                if stop:
                    break
        except BaseException:
            if made is not None:
                runfolder.forget(Path(cfg.run_dir), made)
            raise
        finally:
            progress.close()
        if state["best_weights"] is not None:
            model.load_state_dict(state["best_weights"])
        model.eval()
        if self._writes_run():
            runfolder.finish(Path(cfg.run_dir), state["history"])
        return state["history"]

    def _means(self, sums: dict[str, Tensor], n: int) -> dict[str, float]:
        """Per-sample means of the loss parts over all processes' rows."""
        if self._group.world == 1:
            return {k: float(v) / n for k, v in sums.items()}
        total = self._group.sum(torch.stack(list(sums.values())))  # (parts,): the same keys everywhere
        return {k: float(v) / n for k, v in zip(sums, total.tolist(), strict=True)}

    def _early_stopping(self, model: nn.Module, state: dict[str, Any], record: dict[str, Any]) -> bool:
        """Keep the best weights by validation loss; True when patience has run out."""
        if "val_loss" not in record or self.config.patience is None:
            return False
        if record["val_loss"] < state["best"]:
            state["best"], state["bad_epochs"] = record["val_loss"], 0
            state["best_weights"] = copy.deepcopy(model.state_dict())
            return False
        state["bad_epochs"] += 1
        return state["bad_epochs"] >= self.config.patience

    def _run_settings(self, n: int) -> dict[str, Any]:
        """What must not change between a run and its resumption, or the result would differ."""
        c = self.config
        settings: dict[str, Any] = {
            "epochs": c.epochs,
            "batch_size": c.batch_size,
            "lr": c.lr,
            "schedule": c.schedule,
            "seed": c.seed,
            "noise": c.noise,
            "noise_level": c.noise_level,
            "pairs": getattr(c.pairs, "__name__", None if c.pairs is None else type(c.pairs).__name__),
            "n_samples": n,
        }
        # added later: recorded only when set, so that earlier checkpoints still resume
        if c.clip_grad_norm is not None:
            settings["clip_grad_norm"] = c.clip_grad_norm
        if c.lr_scales:
            settings["lr_scales"] = dict(c.lr_scales)
        return settings

    def _check_same_run(self, saved: dict[str, Any], now: dict[str, Any]) -> None:
        changed = [f"{k}={saved.get(k)!r} (now {v!r})" for k, v in now.items() if saved.get(k) != v]
        if changed:
            raise ConfigError(
                f"cannot resume: the checkpoint in {self.config.run_dir} was made with {', '.join(changed)}. "
                "Resume with the same settings and data, or start a new run in another folder."
            )

    # -- files ------------------------------------------------------------------------------------------
    def _writes_run(self) -> bool:
        """Whether this process writes the run folder: under torchrun rank 0 alone does."""
        return self.config.run_dir is not None and (self._group is None or self._group.is_main)

    def _start_run(self) -> list[Path] | None:
        """run.json for a run folder that has none (or one of a finished run that this one replaces):
        ``run_info`` and the trainer's settings, so that a run started from Python shows in 'aekit
        dashboard'. A run.json of a run not yet finished ('aekit train' writes one before training) is
        kept; a resume takes back its finished mark. Returns the folders made for it (for
        ``runfolder.forget`` if training fails), or None when it wrote none."""
        cfg = self.config
        if not self._writes_run():
            return None
        run_dir = Path(cfg.run_dir)
        config = runfolder.read_config(run_dir)
        if config and (cfg.resume or not any(key in config for key in runfolder.RESULTS)):
            runfolder.reopen(run_dir)
            return None
        info = dict(cfg.run_info or {})
        for key, value in (("epochs", cfg.epochs), ("batch_size", cfg.batch_size), ("seed", cfg.seed)):
            info.setdefault(key, value)
        return runfolder.start(run_dir, info)

    def _write_epoch(self, model, optimizer, scheduler, state) -> None:
        if not self._writes_run():
            return
        run_dir = Path(self.config.run_dir)
        tensors: dict[str, Tensor] = {}
        doc = {
            "kind": "aekit-checkpoint",
            "state": tensorfile.flatten(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    **state,
                },
                tensors,
                _STATE,
            ),
        }
        tensorfile.save(run_dir / CHECKPOINT, tensors, doc)
        runfolder.write_metrics(run_dir, state["history"])

    def _load_checkpoint(self, model, optimizer, scheduler) -> dict[str, Any]:
        path = Path(self.config.run_dir) / CHECKPOINT
        # What a killed run was writing: a resume with nothing left to train writes no checkpoint to clear it.
        remove_stale(path)
        if not path.exists():
            shared = (  # the usual cause under torchrun
                " Under torchrun every process reads it: on several machines the run folder must be on a "
                "file system they all see."
                if self._group is not None and self._group.world > 1
                else ""
            )
            raise ModelFileError(
                f"cannot resume: no checkpoint at {path}. Train without resume first.{shared}"
            )
        mismatch = (
            f"the checkpoint in {path} was made for a different model or settings, or is damaged; start a "
            "new run (another run_dir) or use the same settings"
        )

        def check(doc: dict[str, Any], declared: dict) -> dict[str, Any]:
            if doc.get("kind") != "aekit-checkpoint":
                raise ModelFileError(f"{path} is not an aekit training checkpoint.")
            return {f"{_STATE}.model.": lambda: model}  # the model is built: its shapes are the settings'

        # The model's weights are loaded here, after their shapes were checked against the file's.
        _, tensors, doc = tensorfile.load_networks(path, "checkpoint", check, mismatch)
        try:
            state = tensorfile.unflatten(doc["state"], tensors)
            del state["model"]
            _check_resumable(state, model, optimizer, scheduler)
            optimizer.load_state_dict(state.pop("optimizer"))
            scheduler.load_state_dict(state.pop("scheduler"))
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelFileError(f"{mismatch}. Detail: {detail}") from None
        return state


def _check_resumable(state: dict[str, Any], model: nn.Module, optimizer, scheduler) -> None:
    """A checkpoint's state must fit the model, optimizer and schedule it resumes: torch does not check
    the optimizer's moments against the weights, and a scheduler takes any dict."""
    for key, kind in _STATE_TYPES.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise TypeError(f"its {key} is a {type(state[key]).__name__}")
    shapes = {name: t.shape for name, t in model.state_dict().items()}
    best = state["best_weights"]
    if best is not None and {name: t.shape for name, t in best.items()} != shapes:
        raise ValueError("its best weights do not fit the model")
    saved = state["optimizer"]
    ids = [i for group in saved["param_groups"] for i in group["params"]]
    weights = [p for group in optimizer.param_groups for p in group["params"]]
    if len(ids) != len(weights):
        raise ValueError(f"its optimizer state is for {len(ids)} weights, the model has {len(weights)}")
    by_id = dict(zip(ids, weights, strict=True))
    for i, moments in saved["state"].items():
        for name, value in moments.items():
            if isinstance(value, Tensor) and value.ndim and value.shape != by_id[i].shape:
                raise ValueError(f"its optimizer's {name} of weight {i} has shape {tuple(value.shape)}")
    if set(state["scheduler"]) != set(scheduler.state_dict()):
        raise ValueError("its learning-rate schedule is of another kind")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Tensor | TrainData,
    batch_size: int = EVAL_BATCH,
    pairs=None,
    seed: int = 0,
    objective=None,
) -> dict[str, float]:
    """Mean of each loss part over ``x`` (a tensor on the model's device, or any ``TrainData``) with the
    model in eval mode; ``objective`` as in TrainConfig (None: ``aekit.losses.objective``).

    With ``pairs`` (see TrainConfig) the inputs are made from ``x`` under a fixed seed, so every call
    sees the same degraded inputs and the caller's random state is left as it was.
    """
    data = TensorData(x) if isinstance(x, Tensor) else x
    return _evaluate(model, data, batch_size, pairs, seed, None, objective)


def _evaluate(
    model: nn.Module,
    data: TrainData,
    batch_size: int,
    pairs,
    seed: int,
    group: Group | None = None,
    objective=None,
) -> dict[str, float]:
    """``evaluate``, each process scoring its slices, the sums added up over the processes."""
    rank, world = (group.rank, group.world) if group is not None else (0, 1)
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    device = next(iter(model.parameters()), torch.empty(0)).device
    devices = [device] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices, enabled=pairs is not None):
        torch.manual_seed(seed)
        for batch in data.batches(batch_size, None, rank, world):
            rows = len(batch)
            if rows == 0:
                if sums:
                    continue
                # a process whose slices are all empty still needs the parts' names for the all-reduce
                batch = batch.new_zeros((1, *batch.shape[1:]))  # (1, *sample_shape), weight 0
            batch = batch.to(device, non_blocking=True)
            inputs, target = pairs(batch) if pairs else (batch, batch)
            for k, v in (objective or losses.objective)(model, model(inputs), target).items():
                sums[k] = sums.get(k, 0.0) + float(v) * rows
            count += rows
    model.train(was_training)
    if world > 1:
        # [count, part sums...] in float64 on the group's device, the parts in the objective's order
        total = torch.tensor([count, *sums.values()], dtype=torch.float64, device=device)
        count, *values = group.sum(total).tolist()
        sums = dict(zip(sums, values, strict=True))
    return {k: v / count for k, v in sums.items()}


def _param_groups(model: nn.Module, lr: float, scales: dict[str, float] | None) -> list[dict[str, Any]]:
    """The optimizer's groups: weights named by a prefix in ``scales`` learn at lr times its value."""
    groups: dict[float, list[nn.Parameter]] = {1.0: []}
    for name, p in model.named_parameters():
        scale = next((v for prefix, v in (scales or {}).items() if name.startswith(prefix)), 1.0)
        groups.setdefault(float(scale), []).append(p)
    return [{"params": ps, "lr": lr * scale} for scale, ps in groups.items() if ps]


def _schedule(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "plateau":
        return Plateau(optimizer, warmup=min(PLATEAU_WARMUP, steps_per_epoch))
    # torch's OneCycleLR divides by zero when its warm-up ends at step 0, so very short runs warm up
    # over at least ~2 steps, and runs of under 4 steps keep the learning rate constant.
    warmup = min(0.5, max(0.2, 2.5 / total))
    schedules = {
        # warm up for 20% of the run, then anneal: fast and forgiving of the peak learning rate
        "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total, pct_start=warmup
        ),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total),
        "constant": lambda: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
    }
    return schedules["constant" if total < 4 else cfg.schedule]()
