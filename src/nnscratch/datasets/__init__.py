"""Datasets: IDX files, MNIST and friends, downloads and caching (NumPy only)."""
