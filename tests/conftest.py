"""Suite-wide settings: a headless matplotlib backend, a private data cache, Hypothesis profiles."""

import os
import tempfile

from hypothesis import HealthCheck, settings

os.environ.setdefault("MPLBACKEND", "Agg")

# No per-example deadline and no "too slow" health check: a loaded 2-core machine
# must not turn slowness into failures. CI (.ci/run) also fixes the examples
# (derandomize), so a landing never depends on which random inputs were drawn;
# local runs keep exploring new ones.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config):
    # Keep decoded-array caches and downloads out of the user's home directory.
    if "NNSCRATCH_DATA_DIR" not in os.environ:
        os.environ["NNSCRATCH_DATA_DIR"] = tempfile.mkdtemp(prefix="nnscratch-test-data-")
