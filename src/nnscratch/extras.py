"""Optional packages of the front ends (``pip install 'nnscratch[EXTRA]'``).

NumPy, matplotlib, tqdm and Pillow are always there; scikit-learn, Dask and
FastAPI belong to one feature each. ``require`` imports such a package or
raises a ``MissingExtraError`` whose one line names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nnscratch.errors import MissingExtraError

# extra -> the packages it installs (pyproject.toml's optional-dependencies).
EXTRAS = {"sklearn": ("sklearn",), "sweep": ("dask", "distributed"), "serve": ("fastapi", "uvicorn")}


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module`, or fail with: "<feature> needs <module>: pip install 'nnscratch[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(f"{feature} needs the {top} package, which is not installed: "
                                f"pip install 'nnscratch[{extra}]' (or 'nnscratch[all]')") from exc
