"""``aekit info`` (what a model file holds) and ``aekit eval`` (how well it reconstructs, beside PCA;
for a VAE also the importance-weighted test NLL)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from aekit.cli.common import (
    KEY_HELP,
    add_device_option,
    add_key_option,
    console,
    fmt,
    load_estimator,
    note,
    open_input,
    positive_int,
    stopped_early,
)
from aekit.errors import ModelFileError

VERBS = ("info", "eval")

SCALING_NOTES = {
    "divide255": "values / 255, so the model sees [0, 1]",
    "minmax": "each feature mapped to [0, 1] by its training min and max",
    "standard": "each feature standardised by its training mean and std",
    "none": "values used as they are",
}
# The unit of the reported MSE: errors are measured on the values the model sees.
MSE_UNITS = {
    "divide255": "MSE of pixel values scaled to [0, 1] (value / 255)",
    "minmax": "MSE of features min-max scaled to [0, 1] by the training data",
    "standard": "MSE of standardised features (1.0 = no better than predicting each feature's training mean)",
    "none": "MSE of the data's own values",
}
TRAINING_PARAMS = (
    "epochs",
    "batch_size",
    "lr",
    "schedule",
    "weight_decay",
    "noise",
    "noise_level",
    "validation_fraction",
    "patience",
    "random_state",
)
IW_SAMPLES = 100  # the default of AutoEncoder.log_likelihood, repeated here so --help does not import torch
BINARIZE_SEED = 0  # grey test data is binarised once with this seed before a Bernoulli likelihood scores it
PCA_RANDOMIZED_ABOVE = 1_000_000  # values in the training matrix; above it a full SVD gets slow


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="show what a model file holds",
        description="Show a model file's family, settings, data layout and scaling, "
        "parameter count, versions, and its training: epochs and final losses.",
    )
    p.add_argument(
        "model",
        help="model file written by 'aekit train' or AutoEncoder.save, or a built-in model's name "
        "(photo, denoise, upscale-x2, upscale-x4, inpaint, colorize)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    p = subparsers.add_parser(
        "eval",
        help="measure reconstruction error on a data set, beside PCA",
        description="Reconstruction error of a model on the test split of a data set (the "
        "training split when there is none), beside PCA with as many components as the code "
        "has, fitted on the training split. Errors are measured on the values the model sees "
        "(e.g. pixels / 255), after rounding back to the data's own type, as a user gets them.",
    )
    p.add_argument("model", help="model file written by 'aekit train' or AutoEncoder.save")
    p.add_argument(
        "--data", required=True, help="a data set name (digits, mnist, fashion-mnist, cifar10) or a path"
    )
    add_key_option(p, KEY_HELP + "; the array is then both the test data and PCA's training data")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--iw-samples",
        type=positive_int,
        default=IW_SAMPLES,
        metavar="K",
        help="VAEs only: importance samples per test sample for the negative log-likelihood estimate "
        "(IWAE; larger K = tighter, slower; default: %(default)s)",
    )
    add_device_option(p)


def run(args: argparse.Namespace) -> int:
    return {"info": _info, "eval": _eval}[args.command](args)


# -- info ---------------------------------------------------------------------------------------------------


def _builtin_file(name: str) -> str:
    """A built-in model's name stands for its file (a file of that name, if there is one, wins)."""
    from aekit.codec.builtin import CODECS
    from aekit.restore.builtin import RESTORERS

    if not Path(name).exists():
        for table in (CODECS, RESTORERS):
            if name in table:
                return str(table.path(name))
    return name


def _info_table(path: str):
    """The two-column table 'aekit info' prints, titled with the file and its size."""
    from rich.table import Table

    size = Path(path).stat().st_size
    table = Table(title=f"{path} ({size / 1024:.1f} KiB)", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    return table


def _info(args: argparse.Namespace) -> int:
    from aekit import tensorfile
    from aekit._version import __version__
    from aekit.data.scaling import DataSpec
    from aekit.errors import NetworksNeededError
    from aekit.io import load_model

    args.model = _builtin_file(args.model)
    # The header alone says which loader to ask; that loader checks the whole file before building.
    declared, doc = tensorfile.read_header(args.model)
    if doc.get("estimator") in OTHER_ESTIMATORS:
        return _other_info(args, doc)
    networks = None
    try:
        model, doc = load_model(args.model)
        parameters = sum(p.numel() for p in model.parameters())
    except NetworksNeededError as exc:  # the user's own networks: the header is checked, the classes absent
        parameters = sum(math.prod(d.shape) for d in declared.values())
        networks = {role: doc["model_config"]["networks"][role] for role in ("encoder", "decoder")}
        networks["load"] = exc.call
    try:
        spec = DataSpec.from_dict(doc["data"])
        params = dict(doc["params"])
        history = list(doc.get("history", []))
        settings = {
            k: v for k, v in doc["model_config"].items() if k not in ("input_shape", "extra", "networks")
        }
        if networks is not None:  # the settings of the built-in networks, which the user's replace
            for key in ("hidden", "decoder_hidden", "activation", "backbone", "downsample"):
                settings.pop(key, None)
        report = {
            "file": str(args.model),
            "family": doc["family"],
            "settings": settings,
            "training": {k: params.get(k) for k in TRAINING_PARAMS},
            "data": {
                "sample_shape": list(spec.sample_shape),
                "dtype": spec.dtype,
                "scaling": spec.scaling,
                "model_input_shape": list(spec.input_shape),
            },
            "parameters": parameters,
            "library_version": doc["library_version"],
            "format_version": doc["format_version"],
            "epochs_trained": len(history),
            "final": history[-1] if history else None,
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{args.model} has a damaged header ({type(exc).__name__}: {exc}).") from None
    if networks is not None:
        report["networks"] = networks
    report["typicality"] = _stored_typicality(doc.get("typicality"))
    ordered = doc.get("ordered")
    if isinstance(ordered, dict):  # AutoEncoder.load checks it in full; here it is only shown
        report["ordered"] = {"code_size": ordered.get("code_size"), "trained": settings.get("code_size")}
    if args.json:
        print(json.dumps(report))
        return 0
    table = _info_table(args.model)
    table.add_row("family", report["family"])
    if networks is not None:
        from rich.markup import escape  # the classes' arguments are the file's text: no markup in them

        table.add_row(
            "networks",
            escape(
                f"your own: encoder {_call(networks['encoder'])}, decoder {_call(networks['decoder'])}; "
                f"the aekit commands cannot load it, Python can: {networks['load']}"
            ),
        )
    table.add_row("settings", ", ".join(f"{k}={fmt(v)}" for k, v in settings.items()))
    if "ordered" in report:
        kept, trained = report["ordered"]["code_size"], report["ordered"]["trained"]
        table.add_row(
            "code", f"ordered (nested dropout): {fmt(kept)} of {fmt(trained)} units used by encode/transform"
        )
    table.add_row("training", ", ".join(f"{k}={fmt(v)}" for k, v in report["training"].items()))
    table.add_row(
        "data",
        f"samples of shape {fmt(spec.sample_shape)}, {spec.dtype}; scaling {spec.scaling}: "
        f"{SCALING_NOTES.get(spec.scaling, '?')}",
    )
    table.add_row("parameters", f"{report['parameters']:,}")
    table.add_row(
        "versions",
        f"written by aekit {report['library_version']}, model format "
        f"{report['format_version']} (this is aekit {__version__})",
    )
    table.add_row("typicality", _typicality_text(report["typicality"]))
    stopped = history and stopped_early(history, params.get("patience"))
    table.add_row("epochs trained", f"{len(history)}" + (" (stopped early)" if stopped else ""))
    if history:
        table.add_row(
            "final losses",
            ", ".join(f"{k} {fmt(v)}" for k, v in history[-1].items() if k not in ("epoch", "lr", "seconds")),
        )
    console().print(table)
    return 0


def _stored_typicality(entry: Any) -> dict[str, Any] | None:
    """What an autoencoder file's typicality entry holds, only shown (AutoEncoder.load checks it in
    full): None when the file predates typicality."""
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("quantiles"), dict):
        return {"statistics": [], "rows": None, "damaged": True}
    return _typicality_report(entry)


def _typicality_report(entry: dict[str, Any]) -> dict[str, Any]:
    return {"statistics": sorted(entry["quantiles"]), "rows": entry.get("rows")}


def _typicality_text(report: dict[str, Any] | None) -> str:
    if report is None:
        from aekit.typicality import NOT_STORED

        return NOT_STORED.replace("no typicality stored", "none stored", 1)
    if report.get("damaged"):
        return "damaged entry: loading the model says what is wrong"
    return (
        f"stored: the training distribution of {', '.join(report['statistics'])} over {report['rows']} "
        "training samples; inputs less typical than 99.9% of them are warned about (--strict refuses them)"
    )


def _call(entry: dict[str, Any]) -> str:
    """A stored network as the call that builds it: "mypkg.nets:MyEncoder(width=64)"."""
    return f"{entry['class']}({', '.join(f'{k}={v!r}' for k, v in entry['args'].items())})"


# -- eval ---------------------------------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from aekit.data import load
    from aekit.data.scaling import check_like
    from aekit.training import evaluate

    est = load_estimator(args.model, args.device)
    spec = est.spec_
    if args.key is None:
        ds = load(args.data)
    else:  # one array of the file: no split to take
        from aekit.data import Dataset

        ds = Dataset(Path(args.data).stem, open_input(args.data, args.key).read_all())
    split = "test" if ds.x_test is not None and len(ds.x_test) else "train"
    train = check_like(ds.x_train, spec, "the model", what=f"{ds.name} training data")
    x = check_like(ds.x_test, spec, "the model", what=f"{ds.name} test data") if split == "test" else train
    if split == "train":
        note(f"{ds.name} has no test split; evaluating on its training split, which flatters both models")
    target = spec.to_model(x)  # (N, *input_shape)

    recon = spec.to_model(est.reconstruct(x))
    with torch.no_grad():
        model_loss = evaluate(est.model_, torch.from_numpy(target).to(est.device_))
    ae = {"family": est.kind, "code_size": est.code_size, **_errors(target, recon, spec), "loss": model_loss}

    from sklearn.decomposition import PCA

    flat_train = spec.to_model(train).reshape(len(train), -1)
    k = min(est.code_size, *flat_train.shape)
    solver = "randomized" if flat_train.size > PCA_RANDOMIZED_ABOVE and k < min(flat_train.shape) else "full"
    pca = PCA(n_components=k, svd_solver=solver, random_state=0).fit(flat_train)
    flat = pca.inverse_transform(pca.transform(target.reshape(len(target), -1)))
    low, high = spec.value_range
    if low is not None:
        flat = np.clip(flat, low, high)  # the autoencoder's output is bounded the same way
    # through the user's dtype and back, as the autoencoder's reconstruction went
    pca_recon = spec.to_model(spec.from_model(flat.reshape(target.shape).astype(np.float32)))
    pca_report = {"n_components": k, "n_train": len(train), **_errors(target, pca_recon, spec)}

    report = {
        "model": str(args.model),
        "data": ds.name,
        "split": split,
        "n_samples": len(x),
        "unit": MSE_UNITS.get(spec.scaling, "MSE"),
        "unit_range": spec.value_range == (0.0, 1.0),
        "autoencoder": ae,
        "pca": pca_report,
    }
    if hasattr(est.model_, "posterior"):  # variational: it has a likelihood to estimate
        report["log_likelihood"] = _log_likelihood(est, x, args.iw_samples)
    if args.json:
        print(json.dumps(report))
        return 0
    _print_eval(report, est.model_.config.loss)
    return 0


def _log_likelihood(est, x, k: int) -> dict[str, Any]:
    """The IWAE estimate of the test NLL (nats per sample), and what it is a likelihood of."""
    import numpy as np

    from aekit.generate import LIKELIHOODS

    loss = est.model_.config.loss
    scaled = est.spec_.to_model(x)
    binarized = loss == "bce" and not np.isin(scaled, (0.0, 1.0)).all()
    log_px = est.log_likelihood(x, k=k, random_state=0, binarize_seed=BINARIZE_SEED if binarized else None)
    return {
        "nll_nats": float(-log_px.mean()),
        "k": k,
        "likelihood": LIKELIHOODS[loss],
        "binarized": bool(binarized),
        "what": "importance-weighted estimate (Burda et al. 2016): an upper bound on the true NLL, nats per "
        "sample"
        + (
            f"; grey values scored as a binary copy (each pixel on with probability = its intensity, "
            f"numpy default_rng({BINARIZE_SEED}))"
            if binarized
            else ""
        ),
    }


def _errors(target, recon, spec) -> dict[str, float | None]:
    """MSE, and PSNR in dB where the model's values lie in [0, 1] (peak 1)."""
    import numpy as np

    mse = float(np.mean((target.astype(np.float64) - recon) ** 2))
    psnr = None  # also for a perfect reconstruction (infinite PSNR), which JSON cannot hold
    if spec.value_range == (0.0, 1.0) and mse > 0:
        psnr = 10 * math.log10(1.0 / mse)
    return {"mse": mse, "psnr_db": psnr}


def _print_eval(report: dict[str, Any], loss_name: str) -> None:
    from rich.table import Table

    ae, pca = report["autoencoder"], report["pca"]
    table = Table(
        title=f"{report['model']} on {report['data']} ({report['split']} split, {report['n_samples']} "
        "samples)",
        title_justify="left",
        caption=report["unit"],
        caption_justify="left",
    )
    table.add_column("metric", style="bold")
    table.add_column(f"autoencoder ({ae['family']}, code {ae['code_size']})", justify="right")
    table.add_column(f"PCA ({pca['n_components']} components)", justify="right")
    table.add_row("MSE", fmt(ae["mse"]), fmt(pca["mse"]))
    if report["unit_range"]:  # PSNR needs a peak value: 1
        table.add_row("PSNR (dB)", _db(ae), _db(pca))
    shown, same = [fmt(ae["mse"])], []
    for part, value in ae["loss"].items():
        # A plain autoencoder's training loss is its recon, and an MSE recon on float data is the MSE
        # above: a number is shown once (the JSON keeps every part).
        if fmt(value) in shown:
            same += [part] if fmt(value) == shown[0] else []
            continue
        shown.append(fmt(value))
        label = f"model {part}" + (f" ({loss_name})" if part == "recon" else "")
        table.add_row(label, fmt(value), "-")
    if same:
        table.caption += f"; the model's own {' and '.join(same)} {'is' if len(same) == 1 else 'are'} its MSE"
    ll = report.get("log_likelihood")
    if ll:
        label = f"NLL, nats/sample (IWAE, k={ll['k']}{', binarised' if ll['binarized'] else ''})"
        table.add_row(label, f"{ll['nll_nats']:.2f}", "-")
    console().print(table)
    if ll:
        note(f"NLL: {ll['likelihood']}; {ll['what']}")


def _db(errors: dict[str, Any]) -> str:
    return "inf" if errors["psnr_db"] is None else f"{errors['psnr_db']:.2f}"


# -- info on files that hold more than one autoencoder's worth ----------------------------------------------


def _load_detector(path: str):
    from aekit import AnomalyDetector

    return AnomalyDetector.load(path, device="cpu")


def _load_restorer(path: str):
    from aekit.restore import ImageRestorer

    return ImageRestorer.load(path, device="cpu")


def _load_codec(path: str):
    from aekit.codec import ImageCodec

    return ImageCodec.load(path)


# "estimator" in a file's header -> (what to call it, how to open it: loading checks the whole file)
OTHER_ESTIMATORS = {
    "AnomalyDetector": ("anomaly detector", _load_detector),
    "ImageRestorer": ("image restoration model", _load_restorer),
    "ImageCodec": ("learned image codec", _load_codec),
}


def _networks(est) -> list:
    """The torch modules an estimator holds: a detector has several members, a codec one ``net_``."""
    if hasattr(est, "estimators_"):
        return [member.model_ for member in est.estimators_]
    return [est.net_ if hasattr(est, "net_") else est.model_]


RUN_ONLY = ("device", "verbose", "run_dir", "resume")  # how it was run, not what it is


def _other_info(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    what, load = OTHER_ESTIMATORS[doc["estimator"]]
    est = load(args.model)
    models = _networks(est)
    settings = {k: v for k, v in est.get_params().items() if k not in RUN_ONLY}
    report = {
        "file": str(args.model),
        "holds": what,
        "estimator": doc["estimator"],
        "settings": settings,
        "parameters": sum(p.numel() for m in models for p in m.parameters()),
        "library_version": doc.get("library_version"),
        "format_version": doc.get("format_version"),
        "epochs_trained": len(getattr(est, "history_", [])),
    }
    history = getattr(est, "history_", [])
    if history and "step" in history[-1]:  # trained by optimizer steps (a codec): say how many
        report["steps_trained"] = int(history[-1]["step"])
        del report["epochs_trained"]
    if hasattr(est, "fingerprint_"):  # a codec: archives record it, and decompress checks it
        report["fingerprint"] = est.fingerprint_.hex()
    if hasattr(est, "typicality_"):  # restorers and codecs; loading has checked the entry
        reference = est.typicality_
        report["typicality"] = None if reference is None else _typicality_report(reference.to_dict())
    if args.json:
        print(json.dumps(report))
        return 0
    table = _info_table(args.model)
    table.add_row("holds", f"{what} ({doc['estimator']})")
    table.add_row("settings", ", ".join(f"{k}={fmt(v)}" for k, v in settings.items()))
    table.add_row("parameters", f"{report['parameters']:,}")
    table.add_row(
        "versions", f"written by aekit {report['library_version']}, format {report['format_version']}"
    )
    if "steps_trained" in report:
        table.add_row("steps trained", f"{report['steps_trained']:,}")
    else:
        table.add_row("epochs trained", str(report["epochs_trained"]))
    if "fingerprint" in report:
        table.add_row("fingerprint", report["fingerprint"])
    if "typicality" in report:
        table.add_row("typicality", _typicality_text(report["typicality"]))
    console().print(table)
    return 0
