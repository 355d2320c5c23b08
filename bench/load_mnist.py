"""How long load_mnist() takes: nnscratch (cold and warm cache) vs the book's loader.

Peers, implemented here from the book's description of ``dataset/mnist.py``
(Deep Learning from Scratch, chapter 3):

* book, per-call decode: ``gzip.open`` each file and ``np.frombuffer`` it
  (offset 16 for images, 8 for labels) on every call;
* book, pickle cache: the book's actual scheme, the four arrays decoded once
  and pickled to ``mnist.pkl``, which every later call unpickles.

All sides then do the same post-processing for the default options
(``normalize=True, flatten=True, one_hot_label=False``): float32 / 255.
Cold nnscratch = a fresh empty cache directory each run (decode, verify MD5s,
write the .npy cache); warm = the cache already built. Times are medians of
``--repeats`` runs; all sides run single-threaded in this one process.

    .venv/bin/python bench/load_mnist.py [--repeats 7]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import pickle  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import nnscratch  # noqa: E402
from nnscratch.datasets import load_mnist  # noqa: E402

EMBEDDED = Path(nnscratch.__file__).parent / "datasets" / "data" / "mnist"
BOOK_FILES = {
    "train_img": "train-images-idx3-ubyte.gz",
    "train_label": "train-labels-idx1-ubyte.gz",
    "test_img": "t10k-images-idx3-ubyte.gz",
    "test_label": "t10k-labels-idx1-ubyte.gz",
}


def book_decode() -> dict:
    dataset = {}
    for key, name in BOOK_FILES.items():
        with gzip.open(EMBEDDED / name, "rb") as f:
            if key.endswith("img"):
                dataset[key] = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
            else:
                dataset[key] = np.frombuffer(f.read(), np.uint8, offset=8)
    return dataset


def book_postprocess(dataset: dict):
    for key in ("train_img", "test_img"):
        dataset[key] = dataset[key].astype(np.float32)
        dataset[key] /= 255.0
    return (dataset["train_img"], dataset["train_label"]), (dataset["test_img"], dataset["test_label"])


def book_per_call():
    return book_postprocess(book_decode())


def make_book_pickle(directory: Path) -> Path:
    path = directory / "mnist.pkl"
    with open(path, "wb") as f:
        pickle.dump(book_decode(), f, -1)
    return path


def unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f)


def book_pickle(path: Path):
    with open(path, "rb") as f:
        dataset = pickle.load(f)
    return book_postprocess(dataset)


def median_time(function, repeats: int, setup=None) -> float:
    times = []
    for _ in range(repeats):
        argument = setup() if setup else None
        start = time.perf_counter()
        function(argument) if setup else function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nnscratch-bench-") as scratch:
        scratch = Path(scratch)
        counter = iter(range(10**6))

        def fresh_dir():
            return scratch / f"cold-{next(counter)}"

        cold_repeats = max(3, args.repeats // 2)  # each cold run writes a fresh 55 MB cache
        cold = median_time(lambda d: load_mnist(data_dir=d), cold_repeats, setup=fresh_dir)
        warm_dir = scratch / "warm"
        load_mnist(data_dir=warm_dir)
        warm = median_time(lambda: load_mnist(data_dir=warm_dir), args.repeats)
        warm_raw = median_time(lambda: load_mnist(normalize=False, data_dir=warm_dir), args.repeats)

        per_call = median_time(book_per_call, args.repeats)
        pickle_path = make_book_pickle(scratch)
        pickled = median_time(lambda: book_pickle(pickle_path), args.repeats)
        pickled_raw = median_time(lambda: unpickle(pickle_path), args.repeats)

        # same arrays on both sides
        (x, t), (xt, tt) = load_mnist(data_dir=warm_dir)
        (bx, bt), (bxt, btt) = book_per_call()
        assert np.array_equal(x, bx) and np.array_equal(t, bt) and np.array_equal(xt, bxt) and np.array_equal(tt, btt)

    print(f"load_mnist() with the defaults (normalize=True, flatten=True), medians of {args.repeats} runs "
          f"({cold_repeats} for cold), numpy {np.__version__}, 1 thread")
    rows = [
        ("nnscratch, warm cache", warm),
        ("nnscratch, cold (decode + MD5 + write cache)", cold),
        ("book, gzip + np.frombuffer every call", per_call),
        ("book, mnist.pkl (its own cache)", pickled),
    ]
    print(f"{'':48s} {'seconds':>9s} {'vs nnscratch warm':>18s}")
    for name, seconds in rows:
        print(f"{name:48s} {seconds:9.3f} {seconds / warm:17.2f}x")
    print("\nraw uint8 arrays (normalize=False):")
    print(f"{'nnscratch, warm cache':48s} {warm_raw:9.3f} {1.0:17.2f}x")
    print(f"{'book, unpickle mnist.pkl':48s} {pickled_raw:9.3f} {pickled_raw / warm_raw:17.2f}x")


if __name__ == "__main__":
    main()
