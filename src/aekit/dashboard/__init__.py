"""The ``aekit dashboard`` web app: runs, reconstructions, latent space, the bottleneck, the game, apps.

``create_app(runs_dir, data, models)`` builds the FastAPI application; ``aekit dashboard`` serves it with
uvicorn. The API is described in docs/dashboard.md; the page lives in ``static/`` and needs no build step.
"""

from aekit.dashboard.app import create_app

__all__ = ["create_app"]
