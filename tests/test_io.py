"""Model files and checkpoints: round trips, and every way a file can be bad."""

import io
import json
import os
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch import io as nnio
from nnscratch.errors import ModelFileError
from nnscratch.models.registry import MODELS
from nnscratch.optimizers import build_optimizer

# Small instances of every model class (unknown future classes are built with defaults).
SMALL_CONFIGS = {
    "TwoLayerNet": dict(input_size=784, hidden_size=16, output_size=10, seed=1),
    "MultiLayerNet": dict(input_size=784, hidden_size_list=[16, 8], output_size=10,
                          use_batchnorm=True, use_dropout=True, dropout_ratio=0.2, seed=1),
    "NielsenNetwork": dict(sizes=[784, 16, 10], seed=1),
    "SimpleConvNet": dict(conv_param={"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1},
                          hidden_size=16, seed=1),
}


def build(name):
    config = SMALL_CONFIGS.get(name, {})
    try:
        return MODELS[name](**config)
    except TypeError:  # the class's constructor differs from the guess above
        return MODELS[name]()


def sample_input(model, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *model.input_shape)).astype(model.dtype)


def trained_looking(name):
    """A model whose arrays differ from any fresh initialisation (and from each other)."""
    model = build(name)
    rng = np.random.default_rng(123)
    for array in model.params.values():
        array[...] = rng.standard_normal(array.shape).astype(array.dtype)
    if model.buffers:
        model.predict(sample_input(model, 8), train_flg=True)  # moves BatchNorm running stats
        for array in model.buffers.values():
            array[...] += rng.random(array.shape).astype(array.dtype)
    return model


def tiny_model():
    return trained_looking("TwoLayerNet")


@pytest.fixture
def model_file(tmp_path):
    model = tiny_model()
    path = nnio.save_model(model, tmp_path / "model.npz", summary={"test_accuracy": 0.5})
    return model, path


def rewrite(path, target, change):
    """Copy an .npz archive entry by entry, letting ``change(entries)`` edit it first."""
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    change(entries)
    with open(target, "wb") as f:
        np.savez(f, **entries)
    return target


def metadata_of(entries):
    return json.loads(entries["__metadata__"].tobytes().decode())


def set_metadata(entries, metadata):
    entries["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_every_registered_model(tmp_path, name):
    model = trained_looking(name)
    path = nnio.save_model(model, tmp_path / f"{name}.npz")
    loaded = nnio.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert set(loaded.params) == set(model.params) and set(loaded.buffers) == set(model.buffers)
    for key, value in {**model.params, **model.buffers}.items():
        got = loaded.params.get(key, loaded.buffers.get(key))
        assert got.dtype == value.dtype and np.array_equal(got, value), key
    x = sample_input(model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_file_holds_plain_arrays_and_readable_metadata(model_file):
    model, path = model_file
    # Readable with NumPy alone, without pickle: every entry is a numeric array.
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    assert all(a.dtype.kind in "biuf" for a in entries.values())
    np.testing.assert_array_equal(entries["param/W1"], model.params["W1"])
    meta = metadata_of(entries)
    assert meta["format"] == "nnscratch-model" and meta["format_version"] == 1
    assert meta["model"] == {"class": "TwoLayerNet", "config": json.loads(json.dumps(model.config))}
    assert meta["summary"] == {"test_accuracy": 0.5}
    assert nnio.read_model_metadata(path)["summary"] == {"test_accuracy": 0.5}


def test_loaded_arrays_are_the_layers_arrays(model_file):
    _, path = model_file
    loaded = nnio.load_model(path)
    x = sample_input(loaded)
    before = loaded.predict(x)
    loaded.params["W1"][...] = 0  # the layers must see it
    assert not np.array_equal(loaded.predict(x), before)


# ------------------------------------------------------------------ bad files


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        nnio.load_model(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="directory"):
        nnio.load_model(tmp_path)
    with pytest.raises(ModelFileError, match="/dev/zero: not a regular file"):
        nnio.load_model("/dev/zero")  # endless: reading it would never finish


def test_not_an_archive(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(ModelFileError, match="notes.npz.*not an .npz"):
        nnio.load_model(path)
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    with pytest.raises(ModelFileError, match="plain.npy"):
        nnio.load_model(plain)


def test_other_npz_is_not_a_model(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, W1=np.zeros(3))
    with pytest.raises(ModelFileError, match="other.npz.*__metadata__"):
        nnio.load_model(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(model_file, fraction):
    _, path = model_file
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError, match="model.npz"):
        nnio.load_model(path)


def test_corrupted_bytes_anywhere(model_file):
    _, path = model_file
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    for position in rng.choice(len(data), size=25, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 0x5A
        path.write_bytes(bytes(damaged))
        with pytest.raises(ModelFileError, match="model.npz"):
            nnio.load_model(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_is_detected_or_harmless(model_file, tmp_path, data):
    """Mangled files never load as a different model and never raise a foreign exception.

    A few header bytes (zip timestamps, "made by" fields) are not covered by any
    check and do not change the content: such a file may load, but then exactly
    as saved.
    """
    model, path = model_file
    original = path.read_bytes()
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    target = tmp_path / "mangled.npz"
    target.write_bytes(bytes(damaged))
    try:
        loaded = nnio.load_model(target)
    except ModelFileError as exc:
        assert "mangled.npz" in str(exc)
        return
    for key, value in model.params.items():
        assert np.array_equal(loaded.params[key], value), key


def test_tampered_array_fails_the_checksum(model_file, tmp_path):
    _, path = model_file

    def nudge(entries):
        entries["param/W1"] = entries["param/W1"].copy()
        entries["param/W1"][0, 0] += 1.0

    tampered = rewrite(path, tmp_path / "tampered.npz", nudge)
    with pytest.raises(ModelFileError, match="tampered.npz.*checksum"):
        nnio.load_model(tampered)


def test_tampered_metadata_fails_the_checksum(model_file, tmp_path):
    _, path = model_file

    def edit(entries):
        meta = metadata_of(entries)
        meta["summary"]["test_accuracy"] = 0.99
        set_metadata(entries, meta)

    with pytest.raises(ModelFileError, match="checksum"):
        nnio.load_model(rewrite(path, tmp_path / "edited.npz", edit))


def test_future_format_version_asks_for_an_upgrade(model_file, tmp_path):
    _, path = model_file

    def future(entries):
        meta = metadata_of(entries)
        meta["format_version"] = 2
        set_metadata(entries, meta)

    with pytest.raises(ModelFileError, match="future.npz.*version 2.*upgrade"):
        nnio.load_model(rewrite(path, tmp_path / "future.npz", future))


class _Tripwire:
    """Unpickling this creates a file: proof that a loader ran pickle."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_object_array_is_refused_without_unpickling(model_file, tmp_path):
    _, path = model_file
    tripwire = tmp_path / "unpickled"

    def smuggle(entries):
        entries["param/W1"] = np.array([_Tripwire(tripwire)], dtype=object)

    evil = rewrite(path, tmp_path / "evil.npz", smuggle)
    with pytest.raises(ModelFileError, match="evil.npz.*pickle"):
        nnio.load_model(evil)
    assert not tripwire.exists()
    with pytest.raises(ModelFileError, match="pickle"):
        nnio.load_checkpoint(evil)
    assert not tripwire.exists()


def copy_archive(path, target, replace=None, extra=()):
    """Copy a zip member by member, replacing some members' bytes and appending others."""
    replace = replace or {}
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a duplicate name is the point
        for info in source.infolist():
            out.writestr(info, replace.get(info.filename, source.read(info)))
        for name, data in extra:
            out.writestr(name, data)
    return target


def npy_header_only(shape, descr="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(16)


@pytest.mark.parametrize("craft, message", [
    (lambda p, t: copy_archive(p, t, extra=[("notes.txt", b"hello")]), "unexpected archive member 'notes.txt'"),
    (lambda p, t: copy_archive(p, t, extra=[("__metadata__", b"raw")]), "unexpected archive member"),
    (lambda p, t: copy_archive(p, t, extra=[("param/W1.npy", b"again")]), "unexpected archive member 'param/W1.npy'"),
    # Huge declared shapes must be refused before anything is allocated.
    (lambda p, t: copy_archive(p, t, {"param/W1.npy": npy_header_only((10**12,))}), "declares shape"),
    (lambda p, t: copy_archive(p, t, {"param/W1.npy": npy_header_only((2**32, 2**32))}), "declares shape"),
    (lambda p, t: copy_archive(p, t, {"param/W1.npy": npy_header_only((4,), "|V8")}), "unsupported dtype"),
], ids=["text-member", "raw-bytes-member", "duplicate-member", "huge-shape", "overflowing-shape",
        "void-dtype"])
def test_crafted_archive_members_are_refused(model_file, tmp_path, craft, message):
    _, path = model_file
    crafted = craft(path, tmp_path / "crafted.npz")
    with pytest.raises(ModelFileError, match=f"crafted.npz.*{message}"):
        nnio.load_model(crafted)


def test_compressed_members_are_refused_so_no_zip_bomb_can_inflate(model_file, tmp_path):
    _, path = model_file
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, **entries)  # same arrays and checksum, deflated
    with pytest.raises(ModelFileError, match="bomb.npz.*compressed"):
        nnio.load_model(bomb)


def test_metadata_nested_beyond_json_recursion_is_refused(model_file, tmp_path):
    _, path = model_file

    def nest(entries):
        entries["__metadata__"] = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8)

    with pytest.raises(ModelFileError, match="deep.npz.*not valid JSON"):
        nnio.load_model(rewrite(path, tmp_path / "deep.npz", nest))


def write_with_valid_checksum(path, metadata, arrays):
    """What a forger can do: any metadata and arrays, checksum recomputed."""
    metadata = {k: v for k, v in metadata.items() if k != "arrays"}
    return nnio._write_container(path, metadata, arrays)


def contents(path):
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    arrays = {k: v for k, v in entries.items() if not k.startswith("__")}
    return metadata_of(entries), arrays


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["model"]["config"].update(command="rm -rf /"), "cannot rebuild TwoLayerNet"),
    (lambda m: m["model"]["config"].update(hidden_size=-3), "cannot rebuild TwoLayerNet"),
    (lambda m: m["model"].update(config=["not", "a", "dict"]), "model config"),
    (lambda m: m["model"].update({"class": "os.system"}), "unknown model class 'os.system'"),
    (lambda m: m.update(model="TwoLayerNet"), "unknown model class"),
    (lambda m: m["model"].update({"class": ["TwoLayerNet"]}), "unknown model class"),  # was TypeError: unhashable
], ids=["unexpected-kwarg", "negative-size", "config-list", "foreign-class", "model-not-object", "class-list"])
def test_forged_model_metadata_is_refused(model_file, tmp_path, edit, message):
    _, path = model_file
    metadata, arrays = contents(path)
    edit(metadata)
    forged = write_with_valid_checksum(tmp_path / "forged.npz", metadata, arrays)
    with pytest.raises(ModelFileError, match=f"forged.npz.*{message}"):
        nnio.load_model(forged)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["optimizer"]["config"].update(command="x"), "cannot restore optimizer"),
    (lambda m: m["optimizer"].update({"class": "Popen"}), "unknown optimizer class 'Popen'"),
    (lambda m: m["trainer_state"].update(permutation={"__ndarray__": ["state/0"]}), "missing"),
    (lambda m: m["trainer_state"].update(permutation={"__ndarray__": "param/../../etc"}), "missing"),
    (lambda m: m["trainer_state"].update(shape={"__tuple__": 5}), "tuple marker"),
    (lambda m: m.update(trainer_state=[1, 2]), "not an object"),
    # An array where the model's random state belongs: "truth value of an array ... is ambiguous".
    (lambda m: m["trainer_state"].update(model_rng=m["trainer_state"]["permutation"]), "random state is ndarray"),
    (lambda m: m.update(model_rng_state=m["trainer_state"]["permutation"]), "random state is ndarray"),
], ids=["optimizer-kwarg", "optimizer-class", "array-key-list", "array-key-path", "tuple-marker",
        "state-list", "model-rng-array", "old-model-rng-array"])
def test_forged_checkpoint_metadata_is_refused(tmp_path, edit, message):
    path = nnio.save_checkpoint(tmp_path / "checkpoint.npz",
                                {"permutation": np.arange(10), "shape": (1, 28, 28)},
                                model=tiny_model(), optimizer=build_optimizer("adam", lr=0.1))
    nnio.load_checkpoint(path)  # the untouched file loads
    metadata, arrays = contents(path)
    edit(metadata)
    forged = write_with_valid_checksum(tmp_path / "forged.npz", metadata, arrays)
    with pytest.raises(ModelFileError, match=f"forged.npz.*{message}"):
        nnio.load_checkpoint(forged)


def test_a_forged_init_scale_does_not_warn_while_building(model_file, tmp_path):
    # The initial weights are replaced by the stored ones; 1e308 overflowed in them and the
    # CLI printed two "warning: overflow" lines before reading a picture.
    _, path = model_file
    metadata, arrays = contents(path)
    metadata["model"]["config"]["weight_init_std"] = 1e308
    forged = write_with_valid_checksum(tmp_path / "forged.npz", metadata, arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = nnio.load_model(forged)
    assert all(np.isfinite(a).all() for a in model.params.values())


def test_config_that_does_not_match_the_arrays(tmp_path):
    model = tiny_model()
    model.config["hidden_size"] = 17  # the file will claim 17 hidden units, hold 16
    path = nnio.save_model(model, tmp_path / "lying.npz")
    with pytest.raises(ModelFileError, match="lying.npz.*W1.*\\(784, 17\\).*\\(784, 16\\)"):
        nnio.load_model(path)


def test_missing_and_unexpected_arrays(tmp_path):
    model = tiny_model()
    b2 = model.params.pop("b2")
    path = nnio.save_model(model, tmp_path / "short.npz")
    with pytest.raises(ModelFileError, match="short.npz.*missing parameters \\['b2'\\]"):
        nnio.load_model(path)
    model.params["b2"] = b2
    model.params["extra"] = np.zeros(3, np.float32)
    path = nnio.save_model(model, tmp_path / "long.npz")
    with pytest.raises(ModelFileError, match="unexpected parameters \\['extra'\\]"):
        nnio.load_model(path)


def test_wrong_dtype_is_refused(tmp_path):
    model = tiny_model()
    model.params["b1"] = model.params["b1"].astype(np.float64)
    path = nnio.save_model(model, tmp_path / "dtype.npz")
    with pytest.raises(ModelFileError, match="b1.*float32.*float64"):
        nnio.load_model(path)


def test_unknown_class_is_refused(tmp_path, monkeypatch):
    # A file from a newer nnscratch with a network this one does not know.
    class FutureNet(MODELS["TwoLayerNet"]):
        pass

    monkeypatch.setitem(MODELS, "FutureNet", FutureNet)
    future = FutureNet(input_size=784, hidden_size=4, output_size=10)
    path = nnio.save_model(future, tmp_path / "future_net.npz")
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match="future_net.npz.*unknown model class 'FutureNet'"):
        nnio.load_model(path)


def test_unregistered_class_cannot_be_saved(tmp_path):
    class Private(MODELS["TwoLayerNet"]):
        pass

    with pytest.raises(ModelFileError, match="Private.*MODELS"):
        nnio.save_model(Private(input_size=784, hidden_size=4, output_size=10), tmp_path / "p.npz")


def test_checkpoint_is_not_a_model_file(tmp_path):
    model = tiny_model()
    optimizer = build_optimizer("sgd", lr=0.1)
    path = nnio.save_checkpoint(tmp_path / "checkpoint.npz", {"epoch": 1}, model=model, optimizer=optimizer)
    with pytest.raises(ModelFileError, match="checkpoint.npz.*this is a checkpoint"):
        nnio.load_model(path)
    with pytest.raises(ModelFileError, match="this is a model file"):
        nnio.load_checkpoint(nnio.save_model(model, tmp_path / "model.npz"))


def test_unsavable_values_are_refused(tmp_path):
    model = tiny_model()
    with pytest.raises(ModelFileError, match="summary"):
        nnio.save_model(model, tmp_path / "m.npz", summary={"when": object()})
    model.params["W1"] = np.array([object()], dtype=object)
    with pytest.raises(ModelFileError, match="W1.*object"):
        nnio.save_model(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ atomic writes


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with nnio.atomic_write(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("power cut")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []
    with nnio.atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new"
    assert leftovers(tmp_path) == []


def test_atomic_write_respects_umask_not_mkstemp_0600(tmp_path):
    target = tmp_path / "shared.bin"
    old = os.umask(0o022)
    try:
        with nnio.atomic_write(target) as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_save_model_failing_midway_keeps_the_old_file(model_file, monkeypatch, failure):
    old_model, path = model_file
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_fail(file, **entries):
        real_savez(file, **entries)   # a complete archive is in the temporary file...
        file.write(b"trailing")      # ...and more is being written when it breaks
        raise failure

    monkeypatch.setattr(np, "savez", savez_then_fail)
    new_model = trained_looking("TwoLayerNet")
    new_model.params["W1"][...] = 0
    with pytest.raises(type(failure)):
        nnio.save_model(new_model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(path.parent) == []
    np.testing.assert_array_equal(nnio.load_model(path).params["W1"], old_model.params["W1"])

    fresh = path.parent / "fresh.npz"
    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(type(failure)):
        nnio.save_model(new_model, fresh)
    monkeypatch.undo()
    assert not fresh.exists() and leftovers(path.parent) == []


def test_atomic_write_into_missing_directory(tmp_path):
    from nnscratch.errors import FileWriteError

    with pytest.raises(FileWriteError, match="does not exist"):
        nnio.save_model(tiny_model(), tmp_path / "no" / "such" / "model.npz")


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_restores_everything(tmp_path):
    model = trained_looking("TwoLayerNet")
    optimizer = build_optimizer("adam", lr=0.01)
    x = sample_input(model, 20)
    t = np.arange(20) % 10
    for _ in range(3):
        _, grads = model.loss_and_gradient(x, t)
        optimizer.update(model.params, grads)
    rng = np.random.default_rng(7)
    rng.random(5)
    legacy = np.random.RandomState(3)  # MT19937: its state holds an array
    state = {
        "epoch": 2,
        "iteration": 17,
        "permutation": np.random.default_rng(0).permutation(600),
        "rng": rng.bit_generator.state,  # PCG64: 128-bit Python ints
        "legacy_rng": legacy.get_state(legacy=False),
        "history": {"loss": [2.3, 1.1, float("nan")], "test_acc": [0.5, 0.7]},
        "shape": (1, 28, 28),
    }
    args = {"model": "mlp", "hidden": [16], "lr": 0.01, "out": str(tmp_path)}
    path = nnio.save_checkpoint(tmp_path / "checkpoint.npz", state, model=model, optimizer=optimizer, args=args)
    ckpt = nnio.load_checkpoint(path)

    assert ckpt.args == args
    for key, value in model.params.items():
        np.testing.assert_array_equal(ckpt.model.params[key], value)
    got = ckpt.trainer_state
    assert got["epoch"] == 2 and got["iteration"] == 17 and got["shape"] == (1, 28, 28)
    np.testing.assert_array_equal(got["permutation"], state["permutation"])
    assert got["history"]["loss"][:2] == [2.3, 1.1] and np.isnan(got["history"]["loss"][2])
    restored = np.random.default_rng()
    restored.bit_generator.state = got["rng"]
    np.testing.assert_array_equal(restored.random(4), rng.random(4))
    legacy_restored = np.random.RandomState()
    legacy_restored.set_state(got["legacy_rng"])
    np.testing.assert_array_equal(legacy_restored.random_sample(4), legacy.random_sample(4))

    # The optimizer continues exactly: one more identical step on both copies.
    assert type(ckpt.optimizer) is type(optimizer) and ckpt.optimizer.config == optimizer.config
    _, grads = model.loss_and_gradient(x, t)
    optimizer.update(model.params, grads)
    _, grads = ckpt.model.loss_and_gradient(x, t)
    ckpt.optimizer.update(ckpt.model.params, grads)
    for key, value in model.params.items():
        np.testing.assert_array_equal(ckpt.model.params[key], value)


def test_checkpoint_tamper_and_truncation(tmp_path):
    model = tiny_model()
    path = nnio.save_checkpoint(tmp_path / "checkpoint.npz", {"perm": np.arange(10)},
                                model=model, optimizer=build_optimizer("momentum", lr=0.1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="checkpoint.npz"):
        nnio.load_checkpoint(path)
    path.write_bytes(data)

    def shuffle(entries):
        key = next(k for k in entries if k.startswith("state/"))
        entries[key] = entries[key][::-1].copy()

    with pytest.raises(ModelFileError, match="checksum"):
        nnio.load_checkpoint(rewrite(path, tmp_path / "shuffled.npz", shuffle))


def test_npz_archives_contain_npy_members_only(model_file):
    _, path = model_file
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())


# ------------------------------------------------------------------ pretrained


def test_load_pretrained_or_clear_error():
    path = nnio.pretrained_path()
    if not path.is_file():
        with pytest.raises(ModelFileError, match="pretrained model is not installed"):
            nnio.load_pretrained()
        pytest.skip(f"{path} is not there yet (it is trained late in the session)")
    model = nnio.load_pretrained()
    assert type(model).__name__ == "DeepConvNet"
    meta = nnio.read_model_metadata(path)
    assert meta["model"]["class"] == "DeepConvNet"
