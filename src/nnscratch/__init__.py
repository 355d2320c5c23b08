"""nnscratch: deep learning from scratch in NumPy, for handwritten digits.

The book's names are importable from here (``numerical_gradient``,
``TwoLayerNet``, ``load_mnist``, ``SGD`` ...). Submodules are imported on first
use so that ``import nnscratch`` stays fast and never pulls in matplotlib.
"""

from importlib import import_module

__version__ = "0.1.0"

# name -> submodule that defines it; filled in as features land.
_EXPORTS: dict[str, str] = {}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nnscratch' has no attribute {name!r}")
    value = getattr(import_module(f"nnscratch.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
