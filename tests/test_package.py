import subprocess
import sys

import nnscratch


def test_import_is_light():
    code = "import sys, nnscratch; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_is_a_string():
    assert nnscratch.__version__.count(".") == 2


def test_every_exported_book_name_resolves_to_its_submodule():
    import importlib

    for name, module in nnscratch._EXPORTS.items():
        value = getattr(nnscratch, name)
        assert value is getattr(importlib.import_module(f"nnscratch.{module}"), name), name


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'TwoLayerNett'"):
        nnscratch.TwoLayerNett


def test_python_dash_m_runs_the_command_line():
    out = subprocess.run([sys.executable, "-m", "nnscratch", "--version"],
                         capture_output=True, text=True, check=True)
    assert nnscratch.__version__ in out.stdout
