"""load_mnist: canonical data, the book's options, validation/limit and the verified cache."""

import gzip
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.datasets import load_dataset, load_mnist
from nnscratch.errors import ConfigError, DatasetError

EMBEDDED = Path(nnscratch.__file__).parent / "datasets" / "data" / "mnist"
CANONICAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Class counts of MNIST, as published with the dataset.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def independent_decode(name):
    """Decode an embedded file with gzip + struct only, the way the seeds do it."""
    raw = gzip.decompress((EMBEDDED / f"{name}.gz").read_bytes())
    if "images" in name:
        magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
        assert magic == 0x803
        return np.frombuffer(raw[16:], np.uint8).reshape(n, rows, cols)
    magic, n = struct.unpack(">II", raw[:8])
    assert magic == 0x801
    return np.frombuffer(raw[8:], np.uint8)


def assert_same(actual, expected):
    # np.array_equal: exact, and much faster than assert_array_equal on 47M elements
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.array_equal(actual, expected)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mnist-cache")


@pytest.fixture(scope="module")
def raw(data_dir):
    return load_mnist(normalize=False, flatten=False, data_dir=data_dir)


@pytest.fixture(scope="module")
def reference():
    return {name: independent_decode(name) for name in CANONICAL_MD5}


def test_embedded_files_are_the_canonical_bytes():
    for name, md5 in CANONICAL_MD5.items():
        assert hashlib.md5(gzip.decompress((EMBEDDED / f"{name}.gz").read_bytes())).hexdigest() == md5


def test_raw_arrays_match_the_files(raw, reference):
    (x_train, t_train), (x_test, t_test) = raw
    assert x_train.shape == (60000, 1, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 1, 28, 28) and x_test.dtype == np.uint8
    assert t_train.shape == (60000,) and t_train.dtype == np.uint8
    assert t_test.shape == (10000,) and t_test.dtype == np.uint8
    assert_same(x_train[:, 0], reference["train-images-idx3-ubyte"])
    assert_same(x_test[:, 0], reference["t10k-images-idx3-ubyte"])
    assert_same(t_train, reference["train-labels-idx1-ubyte"])
    assert_same(t_test, reference["t10k-labels-idx1-ubyte"])
    assert np.bincount(t_train).tolist() == TRAIN_COUNTS
    assert np.bincount(t_test).tolist() == TEST_COUNTS
    assert t_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_book_defaults_normalize_and_flatten(data_dir, raw):
    (x_train, t_train), (x_test, t_test) = load_mnist(data_dir=data_dir)
    assert x_train.shape == (60000, 784) and x_train.dtype == np.float32
    assert x_test.shape == (10000, 784) and x_test.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    expected = raw[0][0].reshape(60000, 784).astype(np.float32) / np.float32(255.0)
    assert_same(x_train, expected)
    assert_same(t_train, raw[0][1])


def test_flatten_false_normalized_is_nchw(data_dir, raw):
    (x_train, _), (x_test, _) = load_mnist(normalize=True, flatten=False, data_dir=data_dir, limit=500)
    assert x_train.shape == (500, 1, 28, 28) and x_train.dtype == np.float32
    assert_same(x_test * 255.0, raw[1][0][:500].astype(np.float32))


def test_one_hot_labels(data_dir, raw):
    (_, t_train), (_, t_test) = load_mnist(one_hot_label=True, data_dir=data_dir)
    assert t_train.shape == (60000, 10) and t_train.dtype == np.float32
    assert set(np.unique(t_train)) == {0.0, 1.0}
    assert np.all(t_train.sum(axis=1) == 1.0)
    assert_same(t_train.argmax(axis=1), raw[0][1])
    assert_same(t_test.argmax(axis=1), raw[1][1])


def test_validation_count_splits_off_the_end(data_dir, raw):
    train, val, test = load_mnist(normalize=False, validation=10000, data_dir=data_dir)
    assert train[0].shape == (50000, 784) and val[0].shape == (10000, 784) and test[0].shape == (10000, 784)
    full_x = raw[0][0].reshape(60000, 784)
    assert_same(train[0], full_x[:50000])
    assert_same(val[0], full_x[50000:])
    assert_same(val[1], raw[0][1][50000:])
    assert_same(test[1], raw[1][1])


def test_validation_fraction_and_limit(data_dir, raw):
    train, val, test = load_mnist(normalize=False, flatten=False, validation=0.2, limit=1000, data_dir=data_dir)
    assert len(train[0]) == 800 and len(val[0]) == 200 and len(test[0]) == 1000
    assert_same(val[0], raw[0][0][800:1000])
    assert_same(test[0], raw[1][0][:1000])
    assert load_mnist(validation=0.0, limit=5, data_dir=data_dir)[1][0].shape == (5, 784)


def test_limit_keeps_the_first_samples(data_dir, raw):
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=False, limit=100, data_dir=data_dir)
    assert x_train.shape == (100, 784) and x_test.shape == (100, 784)
    assert_same(t_train, raw[0][1][:100])
    assert_same(t_test, raw[1][1][:100])
    # larger than the test set: the whole test set
    assert load_mnist(limit=20000, data_dir=data_dir)[1][0].shape == (10000, 784)


@pytest.mark.parametrize("kwargs,words", [
    ({"validation": -1}, "validation"),
    ({"validation": 60000}, "at least one"),
    ({"validation": 1.5}, "fraction"),
    ({"validation": "10"}, "validation"),
    ({"validation": True}, "validation"),
    ({"limit": 0}, "limit"),
    ({"limit": 2.5}, "limit"),
    ({"dataset": "cifar10"}, "unknown dataset 'cifar10'"),
])
def test_bad_options_raise_config_error(data_dir, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        load_mnist(data_dir=data_dir, **kwargs)


def test_returned_arrays_are_private_copies(data_dir):
    (x, t), _ = load_mnist(normalize=False, data_dir=data_dir)
    assert x.flags.writeable and t.flags.writeable
    x[:] = 0
    t[:] = 0
    (x2, t2), _ = load_mnist(normalize=False, data_dir=data_dir)
    assert x2.max() == 255 and t2[0] == 5


# ---------------------------------------------------------------- the cache


def cache_files(directory):
    return {p.name: p.stat().st_mtime_ns for p in (directory / "mnist" / "decoded").iterdir()}


def test_cache_layout_and_warm_load_does_not_rewrite(tmp_path):
    load_mnist(data_dir=tmp_path, limit=10)
    decoded = tmp_path / "mnist" / "decoded"
    assert sorted(p.name for p in decoded.iterdir()) == [
        "manifest.json", "t_test.npy", "t_train.npy", "x_test.npy", "x_train.npy"]
    manifest = json.loads((decoded / "manifest.json").read_text())
    for role, entry in manifest["arrays"].items():
        content = (decoded / entry["file"]).read_bytes()
        assert len(content) == entry["bytes"]
        assert zlib.crc32(content) == entry["crc32"]
    assert_same(np.load(decoded / "t_test.npy"), independent_decode("t10k-labels-idx1-ubyte"))
    before = cache_files(tmp_path)
    load_mnist(data_dir=tmp_path, limit=10)
    assert cache_files(tmp_path) == before


@pytest.mark.parametrize("damage", ["flip byte", "truncate", "delete array", "garbage manifest",
                                    "wrong shape in manifest"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, reference, damage, data_dir, raw):
    # A copy of the module's cache (built by the `raw` fixture) saves decoding MNIST again.
    shutil.copytree(data_dir / "mnist", tmp_path / "mnist")
    before = cache_files(tmp_path)
    load_mnist(data_dir=tmp_path, limit=10)
    assert cache_files(tmp_path) == before  # the intact copy is accepted as it is
    decoded = tmp_path / "mnist" / "decoded"
    x_train_file = decoded / "x_train.npy"
    if damage == "flip byte":
        content = bytearray(x_train_file.read_bytes())
        content[200_000] ^= 0x55
        x_train_file.write_bytes(bytes(content))
    elif damage == "truncate":
        x_train_file.write_bytes(x_train_file.read_bytes()[:1000])
    elif damage == "delete array":
        x_train_file.unlink()
    elif damage == "garbage manifest":
        (decoded / "manifest.json").write_text("{not json")
    else:
        manifest = json.loads((decoded / "manifest.json").read_text())
        manifest["arrays"]["x_train"]["shape"] = [60000, 784]
        (decoded / "manifest.json").write_text(json.dumps(manifest))
    (x_train, _), _ = load_mnist(normalize=False, flatten=False, data_dir=tmp_path)
    assert_same(x_train[:, 0], reference["train-images-idx3-ubyte"])
    assert cache_files(tmp_path)["manifest.json"] != before["manifest.json"]  # rebuilt, not patched up
    manifest = json.loads((decoded / "manifest.json").read_text())
    assert zlib.crc32(x_train_file.read_bytes()) == manifest["arrays"]["x_train"]["crc32"]
    assert not [p for p in decoded.iterdir() if p.name.startswith(".")]  # no stray temp files


def test_user_files_in_data_dir_are_used_and_verified(tmp_path, reference):
    user = tmp_path / "mnist"
    user.mkdir()
    for name in CANONICAL_MD5:  # uncompressed copies, as a user might have them
        (user / name).write_bytes(gzip.decompress((EMBEDDED / f"{name}.gz").read_bytes()))
    (x, t), _ = load_mnist(normalize=False, flatten=False, data_dir=tmp_path, limit=50)
    manifest = json.loads((user / "decoded" / "manifest.json").read_text())
    assert manifest["sources"]["x_train"]["path"] == str((user / "train-images-idx3-ubyte").resolve())
    assert_same(x[:, 0], reference["train-images-idx3-ubyte"][:50])
    # a changed source invalidates the cache and fails its canonical MD5
    labels = bytearray((user / "train-labels-idx1-ubyte").read_bytes())
    labels[100] = (labels[100] + 1) % 10
    (user / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.*MD5"):
        load_mnist(data_dir=tmp_path)


def test_files_directly_in_data_dir_are_found(tmp_path, reference):
    for name in CANONICAL_MD5:
        shutil.copy(EMBEDDED / f"{name}.gz", tmp_path / f"{name}.gz")
    _, (x_test, t_test) = load_mnist(normalize=False, data_dir=tmp_path)
    manifest = json.loads((tmp_path / "mnist" / "decoded" / "manifest.json").read_text())
    assert manifest["sources"]["t_test"]["path"] == str((tmp_path / "t10k-labels-idx1-ubyte.gz").resolve())
    assert_same(t_test, reference["t10k-labels-idx1-ubyte"])


def test_truncated_user_gzip_is_a_dataset_error(tmp_path):
    user = tmp_path / "mnist"
    user.mkdir()
    for name in CANONICAL_MD5:
        shutil.copy(EMBEDDED / f"{name}.gz", user / f"{name}.gz")
    packed = (user / "t10k-images-idx3-ubyte.gz").read_bytes()
    (user / "t10k-images-idx3-ubyte.gz").write_bytes(packed[:5000])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz.*gzip"):
        load_mnist(data_dir=tmp_path)


def test_env_var_selects_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "from-env"))
    load_mnist(limit=3)
    assert (tmp_path / "from-env" / "mnist" / "decoded" / "manifest.json").is_file()


def test_missing_download_dataset_without_download(tmp_path):
    with pytest.raises(DatasetError, match="missing"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)


def test_import_pulls_in_neither_matplotlib_nor_tqdm():
    code = ("import sys, nnscratch; nnscratch.load_mnist; import nnscratch.datasets.display; "
            "print('matplotlib' in sys.modules, 'tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_concurrent_first_loads_share_one_cache(tmp_path):
    """Several processes building the same cache at once (as pytest -n or parallel jobs do)."""
    code = ("import sys, zlib, nnscratch; (x, t), (xt, tt) = nnscratch.load_mnist(normalize=False, "
            "data_dir=sys.argv[1]); print(zlib.crc32(x.tobytes()), zlib.crc32(tt.tobytes()), len(x))")
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    expected = " ".join(str(v) for v in (
        zlib.crc32(independent_decode("train-images-idx3-ubyte").reshape(60000, 784).tobytes()),
        zlib.crc32(independent_decode("t10k-labels-idx1-ubyte").tobytes()), 60000))
    assert [out.strip() for out, _ in outputs] == [expected] * 3
    decoded = tmp_path / "mnist" / "decoded"
    assert sorted(p.name for p in decoded.iterdir()) == [
        "manifest.json", "t_test.npy", "t_train.npy", "x_test.npy", "x_train.npy"]


def test_unwritable_cache_warns_and_still_loads(tmp_path, reference):
    from nnscratch.errors import NnscratchWarning

    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "decoded").write_text("a file where the cache directory should be")
    with pytest.warns(NnscratchWarning, match="could not write the decoded-array cache"):
        _, (_, t_test) = load_mnist(data_dir=tmp_path)
    assert_same(t_test, reference["t10k-labels-idx1-ubyte"])
