"""Training figures: PNGs are written and show the data they were given."""

import numpy as np
import pytest
from PIL import Image

from nnscratch.errors import ShapeError
from nnscratch.plots.training import (
    confusion_matrix, plot_accuracy, plot_confusion_matrix, plot_loss_comparison, plot_loss_curve,
    plot_optimizer_paths,
    smooth_curve)
from nnscratch.training import History


def png_size(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_smooth_curve_is_a_moving_average_with_honest_edges():
    assert np.allclose(smooth_curve([1, 2, 3, 4, 5], window=3), [1.5, 2, 3, 4, 4.5])
    assert np.allclose(smooth_curve([2.0] * 7, window=5), 2.0)
    assert np.allclose(smooth_curve([1, 5, 3], window=1), [1, 5, 3])


def test_loss_curve(tmp_path):
    losses = 2.0 * np.exp(-np.arange(300) / 100) + np.random.default_rng(0).normal(0, 0.1, 300)
    history = History(train_loss_list=losses.tolist())
    out = tmp_path / "sub" / "loss.png"
    fig = plot_loss_curve(history, out, window=9)
    assert png_size(out) == (640, 400)
    raw, smooth = fig.axes[0].get_lines()
    assert np.allclose(raw.get_ydata(), losses)
    assert np.array_equal(raw.get_xdata(), np.arange(1, 301))
    expected_mid = losses[146:155].mean()  # the window around iteration 151
    assert smooth.get_ydata()[150] == pytest.approx(expected_mid)
    assert fig.axes[0].get_xlabel() == "iteration"
    with pytest.raises(ShapeError):
        plot_loss_curve([])


def test_accuracy_curves(tmp_path):
    history = History(epochs=[{"epoch": i, "train_acc": a, "test_acc": b}
                              for i, (a, b) in enumerate([(0.8, 0.79), (0.9, 0.88), (0.95, 0.93)], 1)])
    fig = plot_accuracy(history, tmp_path / "acc.png")
    assert (tmp_path / "acc.png").stat().st_size > 1000
    train, test = fig.axes[0].get_lines()
    assert list(train.get_ydata()) == [0.8, 0.9, 0.95] and list(test.get_xdata()) == [1, 2, 3]
    assert list(test.get_ydata()) == [0.79, 0.88, 0.93]
    fig = plot_accuracy({"train_acc_list": [0.5, 0.6]})
    assert len(fig.axes[0].get_lines()) == 1


def test_confusion_matrix_image_holds_the_counts(tmp_path):
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, rng.integers(0, 10, 500))
    expected = np.zeros((10, 10), dtype=int)
    for a, b in zip(y_true.tolist(), y_pred.tolist()):
        expected[a, b] += 1

    assert np.array_equal(confusion_matrix(y_true, y_pred, 10), expected)
    fig = plot_confusion_matrix(y_true, y_pred, tmp_path / "cm.png", num_classes=10)
    assert png_size(tmp_path / "cm.png")[0] > 300
    ax = fig.axes[0]
    assert np.array_equal(np.asarray(ax.images[0].get_array()), expected)
    shown = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert shown == {(i, j): expected[i, j] for i, j in zip(*np.nonzero(expected))}
    assert f"{np.trace(expected) / 500:.2%}" in ax.get_title()


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ShapeError):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ShapeError):
        confusion_matrix(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ShapeError):
        confusion_matrix([0, 3], [0, 1], num_classes=2)


def test_optimizer_paths_in_a_two_by_two_grid(tmp_path):
    paths = {name: np.column_stack([np.linspace(-7, 0, 31), np.linspace(2, 0, 31) * k])
             for k, name in enumerate(["SGD", "Momentum", "AdaGrad", "Adam"], 1)}
    fig = plot_optimizer_paths(paths, lambda x, y: x ** 2 / 20 + y ** 2, tmp_path / "paths.png")
    assert png_size(tmp_path / "paths.png") == (840, 720)
    assert [ax.get_title() for ax in fig.axes] == list(paths)
    for ax, points in zip(fig.axes, paths.values()):
        line = ax.get_lines()[0]
        assert np.allclose(line.get_xdata(), points[:, 0]) and np.allclose(line.get_ydata(), points[:, 1])
        assert ax.get_subplotspec().get_geometry()[:2] == (2, 2)
    with pytest.raises(ShapeError, match="SGD"):
        plot_optimizer_paths({"SGD": np.zeros((3, 3))}, lambda x, y: x + y)


def test_loss_comparison_draws_one_smoothed_line_per_run(tmp_path):
    runs = {"SGD": np.linspace(2, 1, 50), "Adam": History(train_loss_list=np.linspace(2, 0.1, 50).tolist())}
    fig = plot_loss_comparison(runs, tmp_path / "cmp.png", window=5)
    assert png_size(tmp_path / "cmp.png") == (640, 400)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["SGD", "Adam"]
    assert np.allclose(lines[1].get_ydata(), smooth_curve(np.linspace(2, 0.1, 50), 5))
    assert fig.axes[0].get_yscale() == "log"


def test_accuracy_ticks_are_whole_epochs(tmp_path):
    fig = plot_accuracy({"train_acc_list": [0.5, 0.7, 0.8], "test_acc_list": [0.4, 0.6, 0.7]})
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_accuracy_comparison_draws_train_and_test_of_every_run(tmp_path):
    from nnscratch.plots.training import plot_accuracy_comparison

    runs = {"plain": {"train_acc_list": [0.6, 1.0], "test_acc_list": [0.5, 0.7]},
            "dropout": {"train_acc_list": [0.5, 0.9], "test_acc_list": [0.5, 0.75]}}
    fig = plot_accuracy_comparison(runs, tmp_path / "overfitting.png")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4 and png_size(tmp_path / "overfitting.png")[0] > 300
    assert np.allclose(lines[3].get_ydata(), [0.5, 0.75]) and lines[3].get_linestyle() == "--"
    labels = [line.get_label() for line in lines]
    assert "plain: test (gap 0.30)" in labels and "dropout: test (gap 0.15)" in labels
    with pytest.raises(ShapeError):
        plot_accuracy_comparison({})
