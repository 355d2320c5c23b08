"""Matplotlib figures, saved as PNG and usable in notebooks.

Import the submodule you need (``from nnscratch.plots.calculus import
plot_gradient_field``); nothing here imports matplotlib until a figure is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnscratch.files import atomic_write

__all__ = ["save_figure", "figure_saved_if_asked"]


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Save ``fig`` to ``path`` atomically: the complete image or nothing.

    The figure is rendered into a temporary file in the same directory, which
    then replaces ``path`` in one ``os.replace``; a Ctrl-C, a full disk or a
    drawing error midway leaves ``path`` as it was (absent, or the previous
    image) and no temporary file behind. Missing parent directories are created.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or path-like
        Final name of the image.
    **savefig_kwargs
        Passed on to ``fig.savefig`` (``dpi``, ``bbox_inches``...). ``format``
        defaults to ``"png"``: matplotlib cannot guess it from a file object.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savefig_kwargs.setdefault("format", "png")
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, **savefig_kwargs)
    return path


def figure_saved_if_asked(fig, path, dpi=100):
    """Save ``fig`` with :func:`save_figure` when ``path`` is given; return ``fig`` either way.

    The plotting functions end with this, so that a notebook can show the
    figure they return whether or not it was also written to a file.
    """
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig
