"""Suite-wide settings: a headless matplotlib backend and a private data cache."""

import os
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    # Keep decoded-array caches and downloads out of the user's home directory.
    if "NNSCRATCH_DATA_DIR" not in os.environ:
        os.environ["NNSCRATCH_DATA_DIR"] = tempfile.mkdtemp(prefix="nnscratch-test-data-")
