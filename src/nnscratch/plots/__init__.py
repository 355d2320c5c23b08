"""Matplotlib figures, saved as PNG and usable in notebooks.

Import the submodule you need (``from nnscratch.plots.calculus import
plot_gradient_field``); nothing here imports matplotlib until a figure is drawn.
"""
