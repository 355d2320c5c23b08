"""Read a prepared digit honestly: the label, how sure it is, and when not to trust it.

A network trained on MNIST always answers one of ten digits, even for random
noise, a ruled line or the border of a scanned page. :func:`assess` turns its
probabilities into a :class:`Reading` that says when the answer should not be
trusted, from two independent kinds of evidence:

* the model's own hesitation: the top probability is under
  :data:`MIN_CONFIDENCE`;
* the prepared picture itself: ink that looks nothing like a handwritten
  stroke. MNIST digits are strokes 2 to 4 pixels wide inside a 20x20 box, at
  least 8 pixels tall, drawn in near-solid ink with anti-aliased edges. The
  checks below each flag what (almost) no MNIST digit looks like: a solid
  patch (noise, a blot, a deep shadow), ink filling its whole box (a noise
  texture), soft shading with no solid ink (a shadow or a gradient), specks or
  a mesh of holes (coarse salt-and-pepper noise), a flat line, a frame around
  the whole box.

The thresholds lie beyond the range of MNIST's digits (checked on a third of
the training images: 34 of 20,000 are flagged by their strokes, 14 of them for
specks or holes). On the 10,000 MNIST test images with the pretrained model
:func:`assess` calls 0.69% of them uncertain: 57 for low confidence, 15 for
their strokes (3 for both)
(``tests/test_reading.py`` measures it; docs/cli.md lists what it catches and
what it misses: it is no letter detector).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from nnscratch.errors import ShapeError

__all__ = ["Reading", "assess", "describe", "to_json", "stroke_problems", "MIN_CONFIDENCE",
           "NOT_A_STROKE"]

#: The reason given when the picture itself does not look like a digit; the
#: specific problems (:func:`stroke_problems`) follow it in ``Reading.reasons``.
NOT_A_STROKE = "does not look like a handwritten stroke"
#: A top probability under this is "low confidence" (57 of the 10,000 MNIST test digits).
MIN_CONFIDENCE = 0.7
# A pixel is solid ink above this level (the 28x28 field is ink 1 on 0).
_SOLID = 0.5
# Solid ink surviving an erosion by a 5x5 square is a patch, not a stroke: 17 of 20,000
# MNIST training digits (very bold ones) have more than this share of such pixels.
_MAX_PATCH_SHARE = 0.25
# Share of the visible ink (> 0.15) that is mid-grey: MNIST's strokes have a solid
# core; a shadow or a gradient is grey throughout.
_MAX_GREY_SHARE = 0.88
# MNIST digits are at least 8 pixels tall in the field (the shortest are flat 2s and 4s).
_MIN_HEIGHT = 6
# Noise or a texture: visible ink over nearly all of a bounding box this large (MNIST's
# fullest boxes of 150 pixels or more are at most 88% inked).
_FILL_MIN_BOX = 150
_MAX_FILL = 0.9
# A straight stroke (thickness under _STRAIGHT of its length, as the square root of the
# ratio of its second moments) leaning more than _FLAT_ANGLE degrees from upright: MNIST's
# ones lean at most about 45 degrees.
_STRAIGHT = 0.15
_FLAT_ANGLE = 50.0
# A frame: ink along all four sides of a bounding box at least this wide and tall.
_FRAME_SIDE = 8
_FRAME_COVER = 0.9
# Coarse noise (salt and pepper in specks a few pixels wide) is neither solid nor grey:
# it is a mesh of small holes or a scatter of separate specks. MNIST's digits are one
# connected stroke with at most two loops: 10 of 20,000 training digits have 5 holes or
# more, and 3 have 5 pieces or more with 40% of their solid ink outside the largest one.
_MAX_HOLES = 5
_MAX_PIECES = 5
_MAX_SCATTER = 0.4


@dataclass
class Reading:
    """What the network reads in one prepared picture.

    Attributes
    ----------
    label : int
        The most probable digit.
    probabilities : list of 10 floats
        The model's probability for each digit.
    confidence : float
        The top probability, in [0, 1].
    uncertain : bool
        True when the answer should not be trusted (see ``reasons``).
    reasons : list of str
        Short phrases, e.g. "low confidence", "does not look like a handwritten stroke",
        then what it looks like instead: "a solid patch (noise, a blot or a shadow)".
    """

    label: int
    probabilities: list
    confidence: float
    uncertain: bool
    reasons: list = field(default_factory=list)


def _square_erosion(mask: np.ndarray, size: int) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(mask, size // 2)
    return sliding_window_view(padded, (size, size)).all(axis=(-1, -2))


def _pieces(mask: np.ndarray) -> np.ndarray:
    """Sizes of the 8-connected pieces of a boolean mask (largest first).

    The ink of each row is cut into runs; a run joins every run of the row above that
    it touches, sideways or corner to corner (union-find over a few dozen runs).
    """
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    run_rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1] - 1  # same order: row by row, left to right
    parent = list(range(len(starts)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    above_first = above_end = 0  # the runs of the row above: [above_first, above_end)
    row_first = 0
    for i in range(len(starts)):
        if i == 0 or run_rows[i] != run_rows[i - 1]:  # a new row starts
            touching_row = i > 0 and run_rows[i] == run_rows[i - 1] + 1
            above_first, above_end = (row_first, i) if touching_row else (i, i)
            row_first = i
        for j in range(above_first, above_end):
            if starts[j] <= ends[i] + 1 and starts[i] <= ends[j] + 1:
                parent[root(i)] = root(j)
    sizes = {}
    for i in range(len(starts)):
        r = root(i)
        sizes[r] = sizes.get(r, 0) + int(ends[i] - starts[i] + 1)
    return np.array(sorted(sizes.values(), reverse=True), dtype=np.int64)


def _holes(mask: np.ndarray, pieces: int) -> int:
    """Holes in a boolean mask (8-connected ink, 4-connected paper), from its Euler number.

    Gray's bit-quad count: Euler number = (Q1 - Q3 - 2 QD) / 4 over the 2x2 squares
    of the mask padded with paper; holes = pieces - Euler number.
    """
    m = np.pad(mask, 1).astype(np.int8)
    quads = m[:-1, :-1] + m[:-1, 1:] + m[1:, :-1] + m[1:, 1:]
    diagonal = (quads == 2) & (m[:-1, :-1] == m[1:, 1:])
    euler = (np.count_nonzero(quads == 1) - np.count_nonzero(quads == 3) - 2 * np.count_nonzero(diagonal)) // 4
    return pieces - euler


def _lies_flat(f: np.ndarray) -> bool:
    """One straight stroke tilted further than _FLAT_ANGLE from upright: a ruled line, not a "1"."""
    ys, xs = np.nonzero(f > _SOLID)
    if ys.size < 3:
        return False
    weights = f[ys, xs]
    cov = np.cov(np.stack([ys, xs]).astype(np.float64), aweights=weights)
    values, vectors = np.linalg.eigh(cov)  # ascending; the last is the stroke's direction
    if values[1] <= 0 or np.sqrt(max(values[0], 0.0) / values[1]) >= _STRAIGHT:
        return False
    down, across = np.abs(vectors[:, 1])
    return np.degrees(np.arctan2(across, down)) > _FLAT_ANGLE


def stroke_problems(field: np.ndarray) -> list[str]:
    """Why the prepared picture does not look like a handwritten digit (empty list: it does).

    Parameters
    ----------
    field : ndarray of shape (28, 28), (1, 28, 28) or (784,)
        A prepared digit, ink 1 on 0 (what :func:`nnscratch.imaging.prepare_digit` returns).
    """
    f = np.asarray(field, dtype=np.float64)
    if f.size != 784:
        raise ShapeError(f"field must hold 28x28 = 784 values, got shape {f.shape}")
    f = f.reshape(28, 28)
    if not np.all(np.isfinite(f)):
        return ["the picture holds NaN or infinite values"]
    solid = f > _SOLID
    area = int(solid.sum())
    if area == 0:
        return ["no solid ink"]
    problems = []
    patch = _square_erosion(solid, 5).sum() > _MAX_PATCH_SHARE * area
    if patch:
        problems.append("a solid patch (noise, a blot or a shadow)")
    visible = f > 0.15
    grey = visible & (f < 0.85)
    if grey.sum() > _MAX_GREY_SHARE * visible.sum():
        problems.append("soft shading with no solid ink (a shadow or a gradient)")
    rows = np.flatnonzero(solid.any(axis=1))
    cols = np.flatnonzero(solid.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    box = f[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if not patch and box.size >= _FILL_MIN_BOX and (box > 0.15).mean() > _MAX_FILL:
        problems.append("ink fills its whole box (noise or a texture)")
    if not patch:
        sizes = _pieces(solid)
        scattered = sizes.size >= _MAX_PIECES and 1 - sizes[0] / area >= _MAX_SCATTER
        if scattered or _holes(solid, sizes.size) >= _MAX_HOLES:
            problems.append("specks or a mesh of holes (coarse noise or a texture)")
    if height < _MIN_HEIGHT or _lies_flat(f):
        problems.append("a flat line")
    elif min(height, width) >= _FRAME_SIDE and not patch:  # a frame is hollow
        box = solid[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        sides = (box[:2].any(axis=0), box[-2:].any(axis=0), box[:, :2].any(axis=1), box[:, -2:].any(axis=1))
        if min(side.mean() for side in sides) >= _FRAME_COVER:
            problems.append("a frame or border")
    return problems


def assess(field: np.ndarray, probabilities) -> Reading:
    """A :class:`Reading` of one prepared picture from the model's probabilities.

    Parameters
    ----------
    field : ndarray of shape (28, 28), (1, 28, 28) or (784,)
        The prepared picture the model was given (ink 1 on 0).
    probabilities : array-like of 10 floats
        The model's softmax output for it.
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if p.size < 2 or not np.all(np.isfinite(p)):
        raise ShapeError(f"probabilities must be finite, one per class, got shape {np.shape(probabilities)}")
    label = int(p.argmax())
    confidence = float(p[label])
    reasons = []
    if confidence < MIN_CONFIDENCE:
        reasons.append("low confidence")
    problems = stroke_problems(field)
    if problems:
        reasons.append(NOT_A_STROKE)
        reasons.extend(problems)
    return Reading(label=label, probabilities=[float(v) for v in p], confidence=confidence,
                   uncertain=bool(reasons), reasons=reasons)


def describe(reading: Reading) -> str:
    """One line for people: "confidence 97.1%" or "confidence 47.9%, uncertain: low
    confidence; does not look like a handwritten stroke (a solid patch (noise...))"."""
    text = f"confidence {100 * reading.confidence:.1f}%"
    if not reading.uncertain:
        return text
    reasons = list(reading.reasons)
    if NOT_A_STROKE in reasons:
        at = reasons.index(NOT_A_STROKE)
        details = reasons[at + 1:]
        reasons = reasons[:at] + [NOT_A_STROKE + (f": {', '.join(details)}" if details else "")]
    return f"{text}, uncertain: {'; '.join(reasons)}"


def to_json(reading: Reading, *, digits: int = 6) -> dict:
    """A JSON-ready dict of a :class:`Reading` (probabilities rounded to ``digits``)."""
    record = asdict(reading)
    record["probabilities"] = [round(v, digits) for v in reading.probabilities]
    record["confidence"] = round(reading.confidence, digits)
    json.dumps(record)  # fails here, not in the caller, if anything is not serialisable
    return record
