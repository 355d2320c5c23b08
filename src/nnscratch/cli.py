"""Command-line entry point (placeholder until the CLI lands)."""

import sys
from importlib import resources

from nnscratch import __version__


def main(argv=None) -> int:
    data = resources.files("nnscratch.datasets") / "data" / "mnist"
    names = sorted(p.name for p in data.iterdir() if p.name.endswith(".gz"))
    print(f"nnscratch {__version__}: embedded MNIST files: {', '.join(names)}")
    print("Training is not implemented yet.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
