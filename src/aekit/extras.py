"""Optional dependencies. The core (the estimators, training, model files, the codec) needs only torch,
numpy, scikit-learn, safetensors, Pillow, rich and constriction; the rest comes with an extra:

- ``dashboard``: fastapi, uvicorn, python-multipart and scikit-image, for ``aekit dashboard``
- ``tables``: pandas and pyarrow, for CSV and Parquet tables
- ``plots``: matplotlib, for ``aekit report``, ``aekit compare``, ``aekit probe`` and ``aekit demo``
- ``metrics``: scikit-image, for ``aekit.restore.psnr`` and ``ssim``
- ``all``: every one of them (``scripts/setup.sh`` installs it)

Each use imports its module through ``require``, so a missing one is one line naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from aekit.errors import ConfigError


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` (dotted names too), or raise a ConfigError saying that ``what`` needs ``extra``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = e.name or module.partition(".")[0]
        raise ConfigError(
            f"{what} needs the '{extra}' extra ({missing} is not installed): pip install 'aekit[{extra}]'"
        ) from None
