"""One drawing, one model -> the JSON answer of ``POST /api/predict``.

The preparation (crop, fit into 20x20, centre by centre of mass in 28x28) is
:mod:`nnscratch.imaging`'s and the verdict (label, confidence, uncertain and
why) is :mod:`nnscratch.reading`'s, so the page and ``nnscratch predict``
give the same answer for the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnscratch.errors import ImageInputError

from . import inference

__all__ = ["Stages", "prepare", "answer", "UNCERTAIN_BELOW"]

# Without nnscratch.reading: a reading below this confidence is flagged as uncertain.
UNCERTAIN_BELOW = 0.7
# A given 28x28 field whose brightest pixel is below this holds no digit.
_BLANK_FIELD = 0.05


@dataclass
class Stages:
    """The preparation shown as pictures: the ink cropped, fitted into 20x20, the 28x28 field."""

    field: np.ndarray                 # (28, 28) float32: what the model sees
    crop: np.ndarray | None = None    # the ink cropped at full resolution (ink bright)
    fitted: np.ndarray | None = None  # (<=20, <=20): scaled into the 20x20 box
    blank: bool = False
    note: str | None = None


def without_source(message: str) -> str:
    # prepare_digit names its source ("<Image>: no digit found ..."): the page has none.
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith("<") and head.endswith(">") else message


def _fitted_from_field(field: np.ndarray) -> np.ndarray | None:
    rows = np.flatnonzero(field.max(axis=1) > 0)
    cols = np.flatnonzero(field.max(axis=0) > 0)
    if rows.size == 0:
        return None
    return field[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def prepare(drawing) -> Stages:
    """A parsed body (:class:`~nnscratch.serve.inputs.Drawing`) -> :class:`Stages`."""
    if drawing.field is not None:
        field = np.asarray(drawing.field, dtype=np.float32)
        blank = float(field.max()) < _BLANK_FIELD
        return Stages(field=field, fitted=None if blank else _fitted_from_field(field), blank=blank,
                      note="the field is empty: no digit to read" if blank else None)
    from nnscratch import imaging

    stages_of = getattr(imaging, "prepare_digit_stages", None)
    if stages_of is not None:
        s = stages_of(drawing.image)
        if s.blank or s.field is None:
            return Stages(field=np.zeros((28, 28), np.float32), blank=True,
                          note=getattr(s, "note", None) or "no digit found")
        field = np.asarray(s.field, dtype=np.float32).reshape(28, 28)
        return Stages(field=field, crop=getattr(s, "crop", None), fitted=getattr(s, "fitted", None),
                      blank=bool(getattr(s, "blank", False)), note=getattr(s, "note", None))
    try:
        field = imaging.prepare_digit(drawing.image)[0]
    except ImageInputError as exc:
        if "no digit" not in str(exc) and "blank" not in str(exc):
            raise
        return Stages(field=np.zeros((28, 28), np.float32), blank=True, note=without_source(str(exc)))
    return Stages(field=field, fitted=_fitted_from_field(field))


def _verdict(field: np.ndarray, probabilities: np.ndarray) -> dict:
    try:
        from nnscratch import reading
    except ImportError:
        reading = None
    if reading is not None and hasattr(reading, "assess"):
        result = reading.assess(field, probabilities)
        verdict = dict(reading.to_json(result)) if hasattr(reading, "to_json") else {
            "label": result.label, "confidence": result.confidence, "uncertain": result.uncertain,
            "reasons": list(result.reasons)}
        verdict.pop("probabilities", None)
        return verdict
    label = int(np.argmax(probabilities))
    confidence = float(probabilities[label])
    uncertain = confidence < UNCERTAIN_BELOW
    reasons = [f"the top class has only {100 * confidence:.0f}% probability"] if uncertain else []
    return {"label": label, "confidence": confidence, "uncertain": uncertain, "reasons": reasons}


def _picture(array) -> str | None:
    if array is None:
        return None
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        return None
    return inference.png_data_url(array)


def answer(loaded, stages: Stages, *, details: bool = False) -> dict:
    """The JSON answer for ``stages`` read by ``loaded`` (a :class:`~.catalog.LoadedModel`).

    Keys: ``model``, ``label`` (None when there is nothing to read),
    ``probabilities`` (10 floats), ``confidence``, ``uncertain``, ``reasons``,
    ``blank``, ``note``, ``input`` (the 28x28 field the model saw) and
    ``stages`` (PNG data URLs of the crop, the 20x20 fit and the field). With
    ``details``: ``activations`` (per layer), ``saliency`` (28x28, d score /
    d pixel) and ``filters`` (the first layer's weights).
    """
    model = loaded.model
    field = stages.field
    result = {"model": loaded.id}
    if loaded.info:
        result["architecture"] = f"{loaded.info['architecture']}, {loaded.info['parameters']:,} parameters"
    n_classes = int(getattr(model, "output_size", 10))
    if stages.blank:
        result.update(label=None, probabilities=[0.0] * n_classes, confidence=0.0, uncertain=False,
                      reasons=[], blank=True, note=stages.note or "draw a digit")
        probabilities = None
    else:
        with loaded.lock:
            probabilities = inference.read_field(model, field)
        verdict = _verdict(field, probabilities)
        result.update(verdict)
        result["probabilities"] = [round(float(p), 6) for p in probabilities]
        result["confidence"] = round(float(result.get("confidence", probabilities.max())), 6)
        result["blank"] = result.get("label") is None
        result.setdefault("note", stages.note)
    result["input"] = np.round(np.asarray(field, dtype=np.float64), 4).tolist()
    result["stages"] = {"crop": _picture(stages.crop), "fitted": _picture(stages.fitted),
                        "field": _picture(field)}
    if details:
        if loaded.filters is None:
            with loaded.lock:
                loaded.filters = inference.first_layer_filters(model) or {}
        result["filters"] = loaded.filters or None
        if probabilities is None:
            result["activations"], result["saliency"] = [], None
        else:
            with loaded.lock:
                result["activations"] = inference.activations(model, field)
                label = result["label"] if result.get("label") is not None else int(np.argmax(probabilities))
                grad = inference.saliency(model, field, label)
            result["saliency"] = None if grad is None else _significant(grad, 4).tolist()
            if grad is not None:
                result["saliency_image"] = _picture(_saliency_picture(grad))
    return result


def _significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits of their largest magnitude (short JSON)."""
    top = float(np.abs(values).max())
    if top == 0 or not np.isfinite(top):
        return np.asarray(values, dtype=np.float64)
    decimals = digits - 1 - int(np.floor(np.log10(top)))
    return np.round(np.asarray(values, dtype=np.float64), decimals)


def _saliency_picture(grad: np.ndarray) -> np.ndarray:
    """|gradient| scaled to [0, 1] (bright: pixels whose change moves the score most)."""
    magnitude = np.abs(grad)
    top = magnitude.max()
    return magnitude / top if top > 0 else magnitude
