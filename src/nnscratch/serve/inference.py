"""What the drawing page asks of a model: read one prepared digit, look inside, explain.

Everything here works on one 28x28 field (white digit on black, as MNIST)
and one model, and returns plain JSON-able values: the page and the HTTP API
show exactly these. Pictures (feature maps, filters) travel as small PNG
data URLs, one per layer, so that a live reading stays a few kilobytes.

* :func:`read_field` -- probabilities of one field.
* :func:`activations` -- every layer's output for the field, as pictures.
* :func:`saliency` -- d score(label) / d pixel by the model's own backward.
* :func:`first_layer_filters` -- the first layer's weights as a picture.

A layer object caches what its backward needs, so one model must not run two
passes at once: callers hold the model's lock (``catalog.LoadedModel.lock``).
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from nnscratch.functions import softmax

__all__ = ["read_field", "activations", "saliency", "first_layer_filters", "png_data_url",
           "tile_maps", "field_for_model"]

# Feature maps shown per layer (a 64-channel layer shows all 64; more would be noise).
MAX_MAPS = 64
# Hidden units of an MLP layer sent as numbers (their picture is always sent).
MAX_UNIT_VALUES = 1024
# First-layer weights of an MLP shown as 28x28 templates.
MAX_TEMPLATES = 64


def png_data_url(gray: np.ndarray) -> str:
    """A 2-D array of values in [0, 1] as a ``data:image/png;base64,...`` URL (8-bit grey)."""
    from PIL import Image

    pixels = np.clip(np.nan_to_num(np.asarray(gray, dtype=np.float64)), 0.0, 1.0)
    image = Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _normalise(maps: np.ndarray, *, signed: bool = False) -> np.ndarray:
    """Each map scaled on its own: [0, max] -> [0, 1], or [-m, m] -> [0, 1] when signed."""
    maps = maps.astype(np.float64)
    axes = tuple(range(1, maps.ndim))
    if signed:
        scale = np.abs(maps).max(axis=axes, keepdims=True)
        return 0.5 + 0.5 * maps / np.where(scale > 0, scale, 1.0)
    low = np.minimum(maps.min(axis=axes, keepdims=True), 0.0)
    high = maps.max(axis=axes, keepdims=True)
    span = np.where(high - low > 0, high - low, 1.0)
    return (maps - low) / span


def tile_maps(maps: np.ndarray, *, gap: int = 1, background: float = 0.25) -> tuple[np.ndarray, int]:
    """Maps (K, H, W) in [0, 1] side by side on a near-square grid; returns (picture, columns)."""
    count, height, width = maps.shape
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    sheet = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), background)
    for k in range(count):
        r, c = divmod(k, columns)
        sheet[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = maps[k]
    return sheet, columns


def field_for_model(model, field: np.ndarray) -> np.ndarray:
    """A 28x28 field as the batch of one the model takes: (1, 1, 28, 28) or (1, 784)."""
    return np.asarray(field, dtype=model.dtype).reshape((1, *model.input_shape))


def read_field(model, field: np.ndarray) -> np.ndarray:
    """Class probabilities (float64, summing to 1) of one field."""
    scores = model.predict(field_for_model(model, field), train_flg=False)
    if not getattr(model, "scores_are_logits", True):
        scores = np.asarray(scores, dtype=np.float64)
        total = scores.sum()
        return scores[0] / total if total > 0 else np.full(scores.shape[1], 1.0 / scores.shape[1])
    return softmax(np.asarray(scores, dtype=np.float64))[0]


def _layers(model):
    layers = getattr(model, "layers", None)
    return layers if isinstance(layers, dict) and layers else None


_IDENTITY_AT_INFERENCE = ("Dropout",)
_WEIGHTED = ("Convolution", "Affine")


def _shown_layers(layers: dict) -> set:
    """Names of the layers whose output ends a block: the input of the next weighted layer, and the scores.

    Within a block (conv or affine, activation, pooling, in either order) only
    the block's finished output is shown; dropout is the identity at inference.
    """
    names = [n for n, layer in layers.items() if type(layer).__name__ not in _IDENTITY_AT_INFERENCE]
    shown = {names[-1]} if names else set()
    for name, following in zip(names, names[1:]):
        if type(layers[following]).__name__ in _WEIGHTED and type(layers[name]).__name__ not in _WEIGHTED:
            shown.add(name)
    return shown


def activations(model, field: np.ndarray) -> list[dict]:
    """Every shown layer's output for ``field``, in order.

    Shown: each block's finished output (after its activation and pooling)
    and the last layer's scores. Each entry: ``layer`` (its name in
    ``model.layers``), ``type`` (its class), ``kind`` ("maps" for
    (C, H, W) outputs, "units" for vectors), ``shape``, ``image`` (PNG data URL
    of the maps side by side, each scaled to its own maximum, or of the units
    on a near-square grid), ``columns`` of that grid, and for units their
    ``values``.
    """
    layers = _layers(model)
    if layers is None:
        return []
    x = field_for_model(model, field)
    shown = []
    wanted = _shown_layers(layers)
    for name, layer in layers.items():
        x = layer.forward(x, False)
        if name not in wanted:
            continue
        out = np.array(x[0], dtype=np.float64)
        entry = {"layer": name, "shape": list(out.shape), "type": type(layer).__name__}
        if out.ndim == 3:
            maps = _normalise(out[:MAX_MAPS])
            sheet, columns = tile_maps(maps)
            entry.update(kind="maps", image=png_data_url(sheet), columns=columns)
        else:
            flat = out.reshape(-1)
            side = max(1, math.ceil(math.sqrt(flat.size)))
            grid = np.zeros(side * side)
            grid[:flat.size] = _normalise(flat[np.newaxis])[0]
            entry.update(kind="units", image=png_data_url(grid.reshape(side, side)), columns=side)
            if flat.size <= MAX_UNIT_VALUES:
                entry["values"] = [round(float(v), 4) for v in flat]
        shown.append(entry)
    return shown


def saliency(model, field: np.ndarray, label: int) -> np.ndarray | None:
    """d score[label] / d pixel for ``field``: which pixels pushed the answer, (28, 28) float64.

    One forward pass in inference mode, then the model's own layers' backward
    from a one-hot gradient on the label's score (not the loss, whose
    gradient vanishes when the model is sure). None for a model without a
    layer list.
    """
    layers = _layers(model)
    if layers is None:
        return None
    first = next(iter(layers.values()))
    saved = getattr(first, "compute_input_grad", None)
    if saved is not None:
        first.compute_input_grad = True
    try:
        x = field_for_model(model, field)
        for layer in layers.values():
            x = layer.forward(x, False)
        dout = np.zeros_like(x)
        dout[0, int(label)] = 1
        for layer in reversed(list(layers.values())):
            dout = layer.backward(dout)
    finally:
        if saved is not None:
            first.compute_input_grad = saved
    return np.asarray(dout, dtype=np.float64).reshape(28, 28)


def first_layer_filters(model) -> dict | None:
    """The first layer's weights as one picture: conv filters, or an MLP's input templates.

    Returns ``{"layer", "kind", "shape", "image", "columns"}`` (weights scaled
    symmetrically, grey = 0, light = positive), or None when the first layer
    has no weights.
    """
    layers = _layers(model)
    if layers is None:
        return None
    name, layer = next(iter(layers.items()))
    weights = getattr(layer, "params", {}).get("W")
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 4:   # (FN, C, FH, FW): one picture per filter, channels averaged
        maps = weights.mean(axis=1)[:MAX_MAPS]
        kind = "filters"
    elif weights.ndim == 2 and weights.shape[0] == 28 * 28:   # (784, hidden): each unit's template
        maps = weights.T[:MAX_TEMPLATES].reshape(-1, 28, 28)
        kind = "templates"
    else:
        return None
    sheet, columns = tile_maps(_normalise(maps, signed=True), background=0.0)
    return {"layer": name, "kind": kind, "shape": list(weights.shape), "image": png_data_url(sheet),
            "columns": columns}
