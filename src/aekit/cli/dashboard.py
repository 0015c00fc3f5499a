"""``aekit dashboard``: serve the web dashboard over a runs folder (FastAPI + uvicorn, 127.0.0.1 by default).

Everything the user named is checked before the server starts, so a typo is one line and exit status 2,
not a server that fails on its first request.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from aekit.cli.common import note
from aekit.errors import ConfigError, DataError
from aekit.extras import require

VERBS = ("dashboard",)

LOCAL_HOSTS = ("127.0.0.1", "localhost")
DEFAULT_RUNS = "runs"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "dashboard",
        help="open the web dashboard: runs, reconstructions, latent space, the bottleneck, the game",
        description="Serve the dashboard in the browser: training runs with live curves, "
        "reconstructions, the latent space, error against code size from 'aekit compare', the "
        "autoencoder game, and restoring or compressing an uploaded image. Models are every *.aek in "
        "the runs folder and one level below it, the model each run wrote (its --out, wherever that is), "
        "and each --model. Stop it with Ctrl+C.",
    )
    p.add_argument(
        "--runs",
        metavar="DIR",
        help=f"the runs folder 'aekit train' writes to (default: {DEFAULT_RUNS}, if it exists)",
    )
    p.add_argument(
        "--data",
        default="digits",
        help="data the model panels show (its test split): a data set name or a path; it must have the "
        "models' sample shape (default: %(default)s)",
    )
    p.add_argument(
        "--model",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE",
        help="model files to show besides those of the runs folder: --model a.aek b.aek (or repeat it)",
    )
    p.add_argument("--port", type=_port, default=8765, help="(default: %(default)s)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; anything else lets other "
        "machines reach the dashboard and its uploads)",
    )
    p.set_defaults(on_interrupt="dashboard stopped")


def run(args: argparse.Namespace) -> int:
    for module in ("fastapi", "uvicorn", "python_multipart", "skimage"):
        require(module, "dashboard", "aekit dashboard")
    runs = _runs_folder(args.runs)
    models = [_model_file(path) for path in args.model]
    _check_data(args.data)
    _check_port(args.host, args.port)
    if not runs.is_dir():  # the default, not made yet: fine, runs started later show up
        note(f"no {runs}/ folder here yet: runs that 'aekit train' starts here will show up")
    if args.host not in LOCAL_HOSTS:
        print(
            f"aekit: warning: --host {args.host}: the dashboard is reachable from other machines and has no "
            "login; anyone who can reach it can see your runs and run your models. Use 127.0.0.1 unless "
            "you mean it.",
            file=sys.stderr,
        )
    import uvicorn

    from aekit.dashboard import create_app

    local = args.host in LOCAL_HOSTS
    app = create_app(runs, args.data, models, allowed_hosts=LOCAL_HOSTS if local else None)
    where = f"http://{'127.0.0.1' if args.host == 'localhost' else args.host}:{args.port}/"
    print(f"aekit dashboard on {where} (runs: {runs}, data: {args.data}); Ctrl+C stops it", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _runs_folder(given: str | None) -> Path:
    """--runs must be a folder; left out, ``runs`` is used even before training has made it."""
    if given is None:
        return Path(DEFAULT_RUNS)
    runs = Path(given).expanduser()
    if not runs.is_dir():
        why = "is a file" if runs.exists() else "does not exist"
        raise DataError(
            f"--runs {given} {why}; give the folder 'aekit train' writes runs to (its --runs, default runs)."
        )
    return runs


def _model_file(path: str) -> Path:
    """A --model file that opens as one of the model types the dashboard shows."""
    from aekit import tensorfile
    from aekit.dashboard.workspace import TYPES
    from aekit.errors import ModelFileError

    _, doc = tensorfile.read_header(path)  # a missing, damaged or foreign file: one ModelFileError
    estimator = doc.get("estimator", "AutoEncoder")
    if estimator not in TYPES:
        raise ModelFileError(f"--model {path} holds a {estimator!r}, which the dashboard cannot show.")
    return Path(path)


def _check_data(source: str) -> None:
    from aekit.data import load

    ds = load(source)
    if (ds.x_test is None or not len(ds.x_test)) and not len(ds.x_train):
        raise DataError(f"--data {source} holds no samples; give a data set with a test or training split.")


def _check_port(host: str, port: int) -> None:
    """Bind once and let go: a port in use is one clear line, not uvicorn's log and exit status 1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ConfigError(f"--host {host!r} is not an address or name this machine can resolve.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port, or stop the "
                "program that uses it."
            ) from None
