"""Trainer: the loop, metrics, callbacks, stopping, exact resumption, divergence, History."""

import csv
import io
import json

import numpy as np
import pytest

from nnscratch.errors import ConfigError, ShapeError, TrainingDivergedError
from nnscratch.models import TwoLayerNet
from nnscratch.optimizers import SGD, Adam, Momentum, build_optimizer
from nnscratch.training import CosineDecay, History, StepDecay, Trainer


def clusters(n, seed=0, features=20, classes=10):
    """Gaussian blobs: easy to learn, hard to memorise by chance."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(123).normal(0, 1.0, (classes, features))
    t = rng.integers(0, classes, n)
    x = centers[t] + rng.normal(0, 0.6, (n, features))
    return x.astype(np.float32), t


X, T = clusters(500, seed=0)
XT, TT = clusters(200, seed=1)


def net(seed=0):
    return TwoLayerNet(20, 16, 10, weight_init_std=0.1, seed=seed)


def make(model=None, optimizer=None, **kw):
    kw.setdefault("epochs", 3)
    kw.setdefault("batch_size", 32)
    return Trainer(model or net(), optimizer or SGD(lr=0.2), X, T, XT, TT, **kw)


def test_fit_learns_and_records_everything():
    trainer = make(epochs=4)
    history = trainer.fit()
    batches = -(-500 // 32)
    assert trainer.batches_per_epoch == batches == 16
    assert len(history.train_loss_list) == 4 * batches == trainer.iteration
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3, 4]
    assert [r["iterations"] for r in history.epochs] == [16, 32, 48, 64]
    assert history.test_acc_list[-1] > 0.9  # chance is 0.1
    assert np.mean(history.train_loss_list[-16:]) < 0.5 * np.mean(history.train_loss_list[:16])
    assert history.epochs[0]["train_loss"] == pytest.approx(np.mean(history.train_loss_list[:16]))
    assert all(r["seconds"] > 0 for r in history.epochs)
    assert not trainer.interrupted


def test_epoch_metrics_match_an_independent_computation():
    trainer = make(epochs=2, evaluate_sample_num_per_epoch=123)
    record = trainer.fit().epochs[-1]
    model = trainer.model
    scores = model.predict(X[:123]).astype(np.float64)
    assert record["train_acc"] == np.mean(scores.argmax(1) == T[:123])
    scores = model.predict(XT).astype(np.float64)
    assert record["test_acc"] == np.mean(scores.argmax(1) == TT)
    p = np.exp(scores - scores.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert record["test_loss"] == pytest.approx(-np.mean(np.log(p[np.arange(200), TT])), rel=1e-5)
    assert record["test_loss"] == pytest.approx(model.loss(XT, TT), rel=1e-4)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    for tr in (a, b, c):
        tr.fit()
    assert np.array_equal(a.model.params["W1"], b.model.params["W1"])
    assert not np.array_equal(a.model.params["W1"], c.model.params["W1"])


def test_every_sample_is_seen_once_per_epoch_in_a_new_order():
    seen = []

    class Spy:
        def loss_and_gradient(self, x, t):
            seen.append(x[:, 0].copy())
            return self.inner.loss_and_gradient(x, t)

    model = net()
    spy = Spy()
    spy.inner, spy.params, spy.predict = model, model.params, model.predict
    x = np.tile(np.arange(250, dtype=np.float32)[:, None], (1, 20))  # sample id in column 0
    t = np.zeros(250, dtype=np.int64)
    trainer = Trainer(spy, SGD(lr=1e-6), x, t, epochs=2, batch_size=100)
    trainer.fit()
    assert [len(s) for s in seen] == [100, 100, 50, 100, 100, 50]
    first, second = np.concatenate(seen[:3]), np.concatenate(seen[3:])
    assert sorted(first) == sorted(second) == list(range(250))
    assert not np.array_equal(first, second)

    seen.clear()
    Trainer(spy, SGD(lr=1e-6), x, t, epochs=1, batch_size=100, drop_last=True).fit()
    assert [len(s) for s in seen] == [100, 100]


def test_callbacks_are_called_in_order_with_their_arguments():
    calls = []

    class Recorder:
        def on_train_begin(self, trainer):
            calls.append(("train_begin",))

        def on_epoch_begin(self, trainer, epoch):
            calls.append(("epoch_begin", epoch))

        def on_batch_end(self, trainer, iteration, loss):
            assert isinstance(loss, float)
            calls.append(("batch_end", iteration))

        def on_epoch_end(self, trainer, epoch, record):
            assert record is trainer.history.epochs[-1]
            calls.append(("epoch_end", epoch))

        def on_train_end(self, trainer):
            calls.append(("train_end",))

    class OnlyEpochEnd:  # hooks are optional
        def on_epoch_end(self, trainer, epoch, record):
            calls.append(("other", epoch))

    x, t = X[:64], T[:64]
    Trainer(net(), SGD(), x, t, epochs=2, batch_size=32, callbacks=[Recorder(), OnlyEpochEnd()]).fit()
    assert calls == [("train_begin",),
                     ("epoch_begin", 1), ("batch_end", 1), ("batch_end", 2), ("epoch_end", 1), ("other", 1),
                     ("epoch_begin", 2), ("batch_end", 3), ("batch_end", 4), ("epoch_end", 2), ("other", 2),
                     ("train_end",)]


class StopAt:
    """Requests a stop after a given iteration, as the CLI's SIGINT handler does."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_batch_end(self, trainer, iteration, loss):
        if iteration == self.iteration:
            trainer.request_stop()


def to_disk_and_back(state, tmp_path):
    """A checkpoint file's round trip: arrays into an .npz, everything else into JSON."""
    arrays = {}

    def encode(v):
        if isinstance(v, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = v
            return {"__array__": key}
        if isinstance(v, dict):
            return {k: encode(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [encode(x) for x in v]
        return v

    meta = json.dumps(encode(state))
    np.savez(tmp_path / "state.npz", **arrays)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as npz:
        loaded = {k: npz[k] for k in npz.files}

    def decode(v):
        if isinstance(v, dict):
            if set(v) == {"__array__"}:
                return loaded[v["__array__"]]
            return {k: decode(x) for k, x in v.items()}
        if isinstance(v, list):
            return [decode(x) for x in v]
        return v

    return decode(json.loads(meta))


def noisy(x_batch, rng):
    return x_batch + rng.normal(0, 0.05, x_batch.shape).astype(x_batch.dtype)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_stop_mid_epoch_and_resume_in_fresh_objects_is_bit_exact(optimizer, tmp_path):
    lr = {"sgd": 0.2, "momentum": 0.05, "adam": 0.01}[optimizer]

    def build(callbacks=()):
        return make(net(seed=3), build_optimizer(optimizer, lr=lr), epochs=2, seed=11,
                    augment=noisy, callbacks=callbacks, lr_schedule=StepDecay(lr, step=1, gamma=0.5))

    straight = build()
    straight.fit()

    first = build(callbacks=[StopAt(16 + 5)])  # 16 batches per epoch: stop in epoch 2
    first.fit()
    assert first.interrupted and first.epoch == 1 and first.batch_index == 5 and first.iteration == 21
    state = to_disk_and_back(first.state_dict(), tmp_path)
    # Training on would change nothing in the saved state.
    first.model.params["W1"][...] = 0

    resumed = make(net(seed=99), build_optimizer(optimizer, lr=1.0), epochs=2, seed=0,
                   augment=noisy, lr_schedule=StepDecay(lr, step=1, gamma=0.5))
    resumed.load_state_dict(state)
    history = resumed.fit()
    assert not resumed.interrupted and resumed.epoch == 2
    for key, value in straight.model.params.items():
        assert np.array_equal(resumed.model.params[key], value), key
    assert history.train_loss_list == straight.history.train_loss_list
    assert history.test_acc_list == straight.history.test_acc_list
    assert [r["lr"] for r in history.epochs] == [lr, lr / 2]


def test_resume_on_the_same_trainer_and_stop_between_epochs():
    straight = make(seed=2)
    straight.fit()

    class StopAfterEpoch:
        def on_epoch_end(self, trainer, epoch, record):
            if epoch == 1:
                trainer.request_stop()

    tr = make(seed=2, callbacks=[StopAt(7), StopAfterEpoch()])
    tr.fit()
    assert tr.interrupted and tr.iteration == 7 and len(tr.history.epochs) == 0
    tr.fit()  # continues; stops again after epoch 1
    assert tr.interrupted and tr.epoch == 1 and tr.batch_index == 0
    tr.fit()
    assert not tr.interrupted and tr.epoch == 3
    assert np.array_equal(tr.model.params["W2"], straight.model.params["W2"])
    assert tr.history.train_loss_list == straight.history.train_loss_list
    assert tr.fit() is tr.history and tr.iteration == straight.iteration  # nothing left to do


def test_state_dict_is_a_snapshot_of_plain_data():
    tr = make(callbacks=[StopAt(3)])
    tr.fit()
    state = tr.state_dict()
    before = state["model"]["params"]["W1"].copy()
    tr.model.params["W1"] += 1
    assert np.array_equal(state["model"]["params"]["W1"], before)
    assert state["epoch"] == 0 and state["batch_index"] == 3 and state["iteration"] == 3
    assert sorted(state["permutation"]) == list(range(500))
    json.dumps({k: v for k, v in state.items() if k not in ("model", "optimizer", "permutation")})


def test_load_state_dict_rejects_an_incompatible_setup():
    tr = make(callbacks=[StopAt(3)])
    tr.fit()
    state = tr.state_dict()
    with pytest.raises(ConfigError, match="batch_size"):
        make(batch_size=50).load_state_dict(state)
    with pytest.raises(ShapeError, match="W1"):
        Trainer(TwoLayerNet(20, 8, 10), SGD(), X, T, batch_size=32).load_state_dict(state)
    with pytest.raises(ConfigError, match="lacks"):
        make().load_state_dict({"epoch": 1})
    with pytest.raises(ConfigError, match="sgd"):
        make(optimizer=Adam()).load_state_dict(state)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow on the way to the NaN
def test_divergence_raises_before_the_bad_update_and_names_the_lr():
    good = {}

    class KeepCopy:
        def on_batch_end(self, trainer, iteration, loss):
            good.update({k: v.copy() for k, v in trainer.model.params.items()})
            good["iteration"] = iteration

    tr = make(optimizer=SGD(lr=1e4), callbacks=[KeepCopy()])
    with pytest.raises(TrainingDivergedError, match=r"lr=10000.*smaller") as info:
        tr.fit()
    assert "lr=1000" in str(info.value)  # the suggestion
    assert tr.iteration == good["iteration"]
    for key, value in tr.model.params.items():
        assert np.all(np.isfinite(value)), key
        assert np.array_equal(value, good[key])


def test_divergence_from_a_non_finite_gradient():
    class InfGradient:
        def __init__(self):
            self.inner = net()
            self.params = self.inner.params

        def loss_and_gradient(self, x, t):
            loss, grads = self.inner.loss_and_gradient(x, t)
            grads["b2"][0] = np.inf
            return loss, grads

    model = InfGradient()
    b2 = model.params["b2"].copy()
    with pytest.raises(TrainingDivergedError, match="'b2'"):
        Trainer(model, Momentum(lr=0.5), X, T).fit()
    assert np.array_equal(model.params["b2"], b2)


def test_lr_schedule_sets_the_optimizer_lr_each_epoch():
    opt = SGD(lr=0.3)
    history = make(optimizer=opt, epochs=5, lr_schedule=StepDecay(0.4, step=2, gamma=0.5)).fit()
    assert [r["lr"] for r in history.epochs] == [0.4, 0.4, 0.2, 0.2, 0.1]
    assert opt.lr == 0.1
    history = make(optimizer=opt, epochs=3, lr_schedule=lambda epoch: 0.1 / epoch).fit()
    assert [r["lr"] for r in history.epochs] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_float64_inputs_train_a_float32_model_and_labels_may_be_one_hot():
    one_hot = np.eye(10, dtype=np.float32)[T]
    tr = Trainer(net(), "sgd", X.astype(np.float64), one_hot, XT, np.eye(10)[TT], epochs=1)
    assert tr.x_train.dtype == np.float32 and isinstance(tr.optimizer, SGD)
    tr.fit()
    assert tr.model.params["W1"].dtype == np.float32
    assert 0 <= tr.history.epochs[0]["test_acc"] <= 1


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, ConfigError, "batch_size"),
    ({"epochs": -1}, ConfigError, "epochs"),
    ({"epochs": 2.5}, ConfigError, "epochs"),
    ({"evaluate_sample_num_per_epoch": 0}, ConfigError, "evaluate_sample_num_per_epoch"),
    ({"augment": 3}, ConfigError, "augment"),
    ({"batch_size": 1000, "drop_last": True}, ConfigError, "no batch"),
])
def test_bad_settings_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_bad_data_is_named():
    with pytest.raises(ShapeError, match="same number"):
        Trainer(net(), SGD(), X, T[:10])
    with pytest.raises(ShapeError, match="x_train"):
        Trainer(net(), SGD(), X[0], T)
    with pytest.raises(ShapeError, match="normalize=True"):
        Trainer(net(), SGD(), (X * 255).astype(np.uint8), T)
    with pytest.raises(ShapeError, match="integers"):
        Trainer(net(), SGD(), X, T.astype(float))
    with pytest.raises(ConfigError, match="both"):
        Trainer(net(), SGD(), X, T, XT)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        Trainer(net(), "newton", X, T)
    with pytest.raises(ConfigError, match="by name"):
        Trainer(net(), SGD(), X, T, optimizer_param={"lr": 0.1})


def test_optimizer_by_name_with_the_books_optimizer_param():
    tr = Trainer(net(), "Adam", X, T, optimizer_param={"lr": 0.005, "beta1": 0.8})
    assert isinstance(tr.optimizer, Adam) and tr.optimizer.config == {"lr": 0.005, "beta1": 0.8, "beta2": 0.999}


def test_history_round_trips_through_json_and_csv(tmp_path):
    history = make(epochs=2).fit()
    again = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert again == history and again.test_acc_list == history.test_acc_list

    path = tmp_path / "history.csv"
    history.to_csv(path)
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["test_acc"]) for r in rows] == history.test_acc_list
    assert float(rows[1]["train_loss"]) == history.epochs[1]["train_loss"]

    buf = io.StringIO()
    history.to_csv(buf, per="iteration")
    lines = buf.getvalue().splitlines()
    assert lines[0] == "iteration,loss" and len(lines) == 1 + len(history.train_loss_list)
    assert float(lines[-1].split(",")[1]) == history.train_loss_list[-1]
    with pytest.raises(ConfigError):
        History.from_dict({"epochs": []})


def test_without_test_data_the_test_columns_are_empty(tmp_path):
    history = Trainer(net(), SGD(lr=0.1), X, T, epochs=1).fit()
    assert history.test_acc_list == [None]
    history.to_csv(tmp_path / "h.csv")
    row = next(csv.DictReader((tmp_path / "h.csv").open()))
    assert row["test_acc"] == "" and float(row["train_acc"]) > 0


def test_resume_is_bit_exact_with_dropout_and_batchnorm(tmp_path):
    from nnscratch.models import MultiLayerNet

    def build(seed, callbacks=()):
        model = MultiLayerNet(20, [16, 16], 10, use_dropout=True, dropout_ratio=0.3,
                              use_batchnorm=True, seed=seed)
        return model, make(model, Adam(lr=0.01), epochs=2, seed=4, callbacks=callbacks)

    straight_model, straight = build(1)
    straight.fit()
    _, first = build(1, callbacks=[StopAt(20)])
    first.fit()
    state = to_disk_and_back(first.state_dict(), tmp_path)
    assert set(state["model"]["buffers"]) == {"running_mean1", "running_var1", "running_mean2", "running_var2"}
    assert state["model_rng"]  # the dropout masks' generators

    model, resumed = build(2)  # other initial weights and dropout seeds
    resumed.load_state_dict(state)
    resumed.fit()
    for key in straight_model.params:
        assert np.array_equal(model.params[key], straight_model.params[key]), key
    for key in straight_model.buffers:
        assert np.array_equal(model.buffers[key], straight_model.buffers[key]), key
    assert resumed.history.train_loss_list == straight.history.train_loss_list


def test_cosine_decay_schedule():
    schedule = CosineDecay(0.1, epochs=4)
    assert [schedule(e) for e in (1, 2, 3, 4, 5)] == pytest.approx(
        [0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2, 0.05, 0.1 * (1 + np.cos(3 * np.pi / 4)) / 2, 0.0])
    assert CosineDecay(0.1, epochs=2, min_lr=0.01)(3) == pytest.approx(0.01)
    history = make(epochs=2, lr_schedule=CosineDecay(0.2, epochs=2)).fit()
    assert [r["lr"] for r in history.epochs] == pytest.approx([0.2, 0.1])
    with pytest.raises(ConfigError, match="epochs"):
        CosineDecay(0.1, epochs=0)
    with pytest.raises(ConfigError, match="min_lr"):
        CosineDecay(0.1, epochs=3, min_lr=0.2)


def test_reported_test_loss_of_a_nielsen_network_is_its_own_cost():
    from nnscratch.models import NielsenNetwork
    from nnscratch.optimizers import SGD

    rng = np.random.default_rng(3)
    x = rng.random((60, 4), dtype=np.float32)
    t = rng.integers(0, 3, size=60).astype(np.uint8)
    net = NielsenNetwork([4, 5, 3], cost="quadratic", seed=0)
    trainer = Trainer(net, SGD(lr=0.5), x, t, x, t, epochs=1, batch_size=20, seed=0)
    trainer.fit()
    onehot = np.eye(3)[t]
    quadratic = 0.5 * np.sum((net.predict(x).astype(np.float64) - onehot) ** 2) / len(x)
    assert trainer.history.epochs[-1]["test_loss"] == pytest.approx(quadratic, rel=1e-5)


def test_evaluate_without_loss_gives_the_same_accuracy():
    rng = np.random.default_rng(4)
    x = rng.random((50, 784), dtype=np.float32)
    t = rng.integers(0, 10, size=50).astype(np.uint8)
    trainer = Trainer(TwoLayerNet(784, 20, 10, seed=0), SGD(lr=0.1), x, t, epochs=1, eval_batch_size=16)
    full = trainer.evaluate(x, t)
    quick = trainer.evaluate(x, t, with_loss=False)
    expected = np.mean(trainer.model.predict(x).argmax(axis=1) == t)
    assert full["accuracy"] == quick["accuracy"] == pytest.approx(expected)
    assert quick["loss"] is None and full["loss"] > 0
