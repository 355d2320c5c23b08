"""Reading a large picture: decoded reduced (nnscratch now) against decoded at full size.

Issue 14: a blank 11000x11000 page took about 20 s before ``predict`` refused it,
and printed Pillow's DecompressionBombWarning. ``prepare_digit(path)`` now reads
the size from the header, decodes JPEGs in draft mode (1/2 to 1/8 scale) and
reduces other formats in Pillow right after decoding, so no full-size float
copy is ever made.

Peer, "full decode" (what ``prepare_digit`` did before): Pillow decodes the
whole picture, it becomes a float64 grey array, and ``prepare_digit`` on that
array shrinks it by block means in NumPy. Both sides give the same answer (the
blank page is refused as blank; the digits are read). Runs alternate between
the sides; the script prints medians and the ratio.

    .venv/bin/python bench/large_pictures.py [--repeats 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from nnscratch.errors import ImageInputError  # noqa: E402
from nnscratch.imaging import prepare_digit  # noqa: E402


def pictures(folder: Path) -> dict[str, Path]:
    out = {}
    Image.new("L", (11000, 11000), 255).save(out.setdefault("blank page 11000x11000 PNG", folder / "page.png"))
    photo = Image.new("RGB", (6000, 6000), (235, 232, 225))
    ImageDraw.Draw(photo).line([(1800, 1200), (4200, 1100), (3000, 4800)], fill=(30, 30, 40), width=300)
    photo.save(out.setdefault("digit photo 6000x6000 JPEG", folder / "photo.jpg"), quality=90)
    scan = Image.new("RGB", (8000, 8000), "white")
    ImageDraw.Draw(scan).line([(4000, 1500), (4000, 6500)], fill="black", width=500)
    scan.save(out.setdefault("digit scan 8000x8000 PNG", folder / "scan.png"))
    return out


def reduced(path):
    try:
        return prepare_digit(path)
    except ImageInputError:
        return None


def full_decode(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
        image.load()
    gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    try:
        return prepare_digit(gray)
    except ImageInputError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, path in pictures(Path(folder)).items():
            times = {"reduced": [], "full decode": []}
            answers = {}
            for _ in range(args.repeats):
                for side, read in (("reduced", reduced), ("full decode", full_decode)):
                    start = time.perf_counter()
                    answers[side] = read(path)
                    times[side].append(time.perf_counter() - start)
            same = (answers["reduced"] is None) == (answers["full decode"] is None)
            median = {side: statistics.median(t) for side, t in times.items()}
            print(f"{name:<28} reduced {median['reduced']:6.2f} s   full decode {median['full decode']:6.2f} s   "
                  f"ratio {median['full decode'] / median['reduced']:5.1f}x   "
                  f"{'both blank' if answers['reduced'] is None and same else 'both read' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
