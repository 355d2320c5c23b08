"""Figures of a hyper-parameter sweep (book chapter 6.5).

* :func:`plot_best_trials` -- the book's figure 6-24: the validation (solid)
  and training (dashed) accuracy curves of the best trials, five to a row.
* :func:`plot_lr_weight_decay` -- every trial as a point at (learning rate,
  weight decay) on log axes, coloured by its validation accuracy: where the
  good region lies, at a glance.

Both return a :class:`matplotlib.figure.Figure` and save it when given ``path``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from . import figure_saved_if_asked

__all__ = ["plot_best_trials", "plot_lr_weight_decay"]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def plot_best_trials(trials, path=None, *, count: int = 20, ncols: int = 5):
    """Validation and training accuracy per epoch of the best ``count`` trials (the book's figure).

    Parameters
    ----------
    trials : sequence of dict
        Best first, each with ``val_acc_list`` and ``train_acc_list`` (one
        value per epoch) and optionally ``val_acc``, ``lr``, ``weight_decay``
        and ``trial`` for the panel titles.
    count : int, default 20
        Panels drawn (the first ``count`` trials).
    ncols : int, default 5
        Panels per row.
    """
    trials = list(trials)[:count]
    if not trials:
        raise ShapeError("plot_best_trials needs at least one trial")
    nrows = math.ceil(len(trials) / ncols)
    fig = _figure((2.6 * ncols, 2.2 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(trials):]:
        ax.set_visible(False)
    for rank, (ax, trial) in enumerate(zip(axes.flat, trials), start=1):
        val = np.asarray(trial["val_acc_list"], dtype=np.float64)
        train = np.asarray(trial["train_acc_list"], dtype=np.float64)
        epochs = np.arange(1, val.size + 1)
        # One epoch is one point: a line of one point is not drawn at all, a marker is.
        marker = "o" if max(val.size, train.size) == 1 else None
        ax.plot(epochs, val, color="C0", marker=marker, label="validation")
        ax.plot(np.arange(1, train.size + 1), train, color="C1", linestyle="--", marker=marker, label="training")
        title = f"Best-{rank}"
        if "val_acc" in trial:
            title += f"  val {trial['val_acc']:.2f}"
        ax.set_title(title, fontsize=9)
        if "lr" in trial and "weight_decay" in trial:
            ax.text(0.97, 0.04, f"lr {trial['lr']:.1e}\nwd {trial['weight_decay']:.1e}",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3")
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in axes[-1]:
        ax.set_xlabel("epochs", fontsize=8)
        # Matplotlib's usual ticks, whole epochs only (one epoch was ticked 0.950, 0.975 ...).
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True,
                                               min_n_ticks=1))
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=8)
    axes.flat[0].legend(loc="upper left", fontsize=7)
    fig.suptitle("Hyper-parameter search: the best trials (validation solid, training dashed)")
    return figure_saved_if_asked(fig, path)


def plot_lr_weight_decay(lr, weight_decay, val_acc, path=None, *, lr_range=None, weight_decay_range=None,
                         title="Validation accuracy of each trial"):
    """Scatter of the learning rate against the weight decay, coloured by validation accuracy.

    Parameters
    ----------
    lr, weight_decay, val_acc : sequence of float, same length
        One value per trial. A NaN accuracy (a diverged trial) is drawn as a grey cross.
    lr_range, weight_decay_range : (float, float), optional
        The searched ranges: the axes then show all of them (with a small margin),
        so that an empty corner reads as "searched, nothing good" rather than cut off.
    """
    lr, weight_decay, val_acc = (np.asarray(v, dtype=np.float64).ravel() for v in (lr, weight_decay, val_acc))
    if not (lr.size == weight_decay.size == val_acc.size) or lr.size == 0:
        raise ShapeError(f"lr, weight_decay and val_acc must be non-empty and of one length, "
                         f"got {lr.size}, {weight_decay.size} and {val_acc.size}")
    fig = _figure((6.4, 4.8))
    ax = fig.add_subplot()
    finite = np.isfinite(val_acc)
    order = np.argsort(np.where(finite, val_acc, -1.0))  # the best drawn last, on top
    order = order[finite[order]]
    points = ax.scatter(lr[order], weight_decay[order], c=val_acc[order], cmap="viridis",
                        vmin=0.0, vmax=1.0, s=40, edgecolors="0.2", linewidths=0.4)
    if (~finite).any():
        ax.scatter(lr[~finite], weight_decay[~finite], marker="x", color="0.5", label="diverged")
    if finite.any():
        best = int(np.nanargmax(val_acc))
        ax.scatter([lr[best]], [weight_decay[best]], marker="*", s=260, facecolors="none",
                   edgecolors="red", linewidths=1.5, label=f"best: {val_acc[best]:.3f}")
    ax.legend(loc="best", fontsize=8)  # the best star, or the diverged crosses when every trial diverged
    fig.colorbar(points, ax=ax, label="validation accuracy")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for limits, set_limits in ((lr_range, ax.set_xlim), (weight_decay_range, ax.set_ylim)):
        if limits is not None:
            low, high = np.log10(limits[0]), np.log10(limits[1])
            margin = 0.04 * max(high - low, 0.5)
            set_limits(10 ** (low - margin), 10 ** (high + margin))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("weight decay")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="major")
    return figure_saved_if_asked(fig, path)
