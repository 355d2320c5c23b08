import subprocess
import sys

import nnscratch


def test_import_is_light():
    code = "import sys, nnscratch; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_is_a_string():
    assert nnscratch.__version__.count(".") == 2
