"""The drawing page's HTTP API on a real uvicorn server on 127.0.0.1 (no test client, no mocks)."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import io
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from PIL import Image, ImageDraw  # noqa: E402

from serve_helpers import running_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- fixtures


def _canvas(strokes, size=280, width=18, transparent=True) -> Image.Image:
    """Black strokes on a canvas, as the page draws them (transparent background by default)."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0) if transparent else (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    for kind, coords in strokes:
        if kind == "line":
            draw.line(coords, fill=(0, 0, 0, 255), width=width, joint="curve")
        else:
            draw.ellipse(coords, outline=(0, 0, 0, 255), width=width)
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


ONE = _canvas([("line", [(140, 40), (140, 240)])])
ZERO = _canvas([("ellipse", [80, 40, 200, 240])])
SEVEN = _canvas([("line", [(70, 60), (210, 60), (120, 240)])])


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A runs folder with one small MLP saved as `nnscratch train` saves it, and a `latest` link."""
    from nnscratch import io as nnio
    from nnscratch.models import MultiLayerNet

    runs = tmp_path_factory.mktemp("runs")
    (runs / "mlp-test").mkdir()
    nnio.save_model(MultiLayerNet(784, [30], 10, seed=1), runs / "mlp-test" / "model.npz")
    os.symlink("mlp-test", runs / "latest")
    return runs


@pytest.fixture(scope="module")
def server(run_folder, tmp_path_factory):
    digits = tmp_path_factory.mktemp("digits")
    with running_server(runs_dir=run_folder, digits_dir=digits) as (base, app):
        yield base, app, digits


def call(base, path, body=None, content_type=None, method=None, timeout=60):
    request = urllib.request.Request(base + path, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        payload = error.read()
        return error.code, json.loads(payload) if payload.startswith(b"{") else payload.decode()


def predict(base, body, content_type="image/png", query=""):
    return call(base, "/api/predict" + query, body, content_type)


# ----------------------------------------------------------------------------- models


def test_models_lists_pretrained_and_runs_by_id_never_by_path(server, run_folder):
    base, _, _ = server
    status, body = call(base, "/api/models")
    assert status == 200
    ids = [m["id"] for m in body["models"]]
    assert ids[0] == "pretrained" and body["default"] == "pretrained"
    runs = [m for m in body["models"] if m["source"] == "run"]
    assert [m["name"] for m in runs] == ["mlp-test"]          # runs/latest is the same run: listed once
    for model_id in ids:
        assert "/" not in model_id and str(run_folder) not in model_id


def test_unknown_and_path_like_model_ids_are_404_with_a_message(server):
    base, _, _ = server
    for model_id in ("nope", "..%2F..%2Fetc%2Fpasswd", "run-..", "%2Ftmp%2Fx.npz"):
        status, body = predict(base, _png(ONE), query=f"?model={model_id}")
        assert status == 404, model_id
        assert "unknown model id" in body["detail"] and "/api/models" in body["detail"]


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("image, digit", [(ONE, 1), (ZERO, 0), (SEVEN, 7)])
def test_a_transparent_canvas_png_is_read(server, image, digit):
    base, _, _ = server
    status, body = predict(base, _png(image))
    assert status == 200
    assert body["label"] == digit
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"])
    assert body["uncertain"] is False and body["blank"] is False
    field = np.array(body["input"])
    assert field.shape == (28, 28) and field.min() >= 0 and field.max() <= 1
    # Centred by centre of mass like MNIST: within a pixel of (14, 14) (row, column of the mean).
    ys, xs = np.indices(field.shape)
    assert abs((ys * field).sum() / field.sum() - 13.5) < 1.2
    assert abs((xs * field).sum() / field.sum() - 13.5) < 1.2
    for stage in ("crop", "fitted", "field"):
        assert body["stages"][stage].startswith("data:image/png;base64,")


def test_jpeg_data_url_and_png_body_give_the_same_answer(server):
    base, _, _ = server
    png = _png(SEVEN)
    _, direct = predict(base, png)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    status, via_json = predict(base, json.dumps({"image": url}).encode(), "application/json")
    assert status == 200 and via_json["probabilities"] == direct["probabilities"]
    white = Image.new("RGB", SEVEN.size, "white")
    white.paste(SEVEN, mask=SEVEN.split()[3])
    buffer = io.BytesIO()
    white.save(buffer, format="JPEG", quality=90)
    status, jpeg = predict(base, buffer.getvalue(), "image/jpeg")
    assert status == 200 and jpeg["label"] == 7


def test_pixels_are_the_field_the_model_sees(server):
    """MNIST test digits sent as pixels: the known labels come back, and `input` echoes the field."""
    from nnscratch.datasets import load_mnist

    base, _, _ = server
    _, (x_test, t_test) = load_mnist(normalize=True, flatten=False, limit=8)
    for image, label in zip(x_test, t_test):
        pixels = image[0].astype(float).tolist()
        status, body = predict(base, json.dumps({"pixels": pixels}).encode(), "application/json")
        assert status == 200
        assert body["label"] == int(label)
        assert np.allclose(body["input"], pixels, atol=1e-4)


def _phone_photo() -> bytes:
    """A 3000x2250 JPEG of a 7 on white paper, stored sideways with EXIF orientation 6 (as phones do)."""
    paper = Image.new("RGB", (2250, 3000), (235, 235, 228))
    draw = ImageDraw.Draw(paper)
    draw.line([(600, 800), (1650, 800), (950, 2300)], fill=(20, 20, 30), width=140, joint="curve")
    exif = Image.Exif()
    exif[0x0112] = 6                      # the viewer turns it 90 degrees clockwise
    buffer = io.BytesIO()
    paper.transpose(Image.Transpose.ROTATE_90).save(buffer, format="JPEG", quality=85, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("name, content, digit", [("seven.png", _png(SEVEN), 7),
                                                  ("photo.jpg", _phone_photo(), 7)])
def test_the_page_and_nnscratch_predict_give_the_same_answer(server, tmp_path, name, content, digit):
    base, _, _ = server
    path = tmp_path / name
    path.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "nnscratch.cli", "predict", "--json", str(path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)[0]
    _, page = predict(base, content, "image/png" if name.endswith(".png") else "image/jpeg")
    assert page["label"] == cli["label"] == digit
    assert page["confidence"] > 0.9          # upright: read sideways (EXIF ignored) it is a 52% guess
    assert np.allclose(page["probabilities"], cli["probabilities"], atol=1e-5)


def test_an_empty_canvas_is_never_a_guess(server):
    base, _, _ = server
    for body, kind in ((_png(_canvas([])), "image/png"),
                       (_png(_canvas([], transparent=False)), "image/png"),
                       (json.dumps({"pixels": [[0.0] * 28] * 28}).encode(), "application/json")):
        status, answer = predict(base, body, kind)
        assert status == 200
        assert answer["label"] is None and answer["blank"] is True
        assert answer["probabilities"] == [0.0] * 10 and answer["note"]


def test_pictures_that_are_no_digit_are_flagged_uncertain(server):
    base, _, _ = server
    blot = np.pad(np.ones((16, 16)), 6)
    frame = np.zeros((28, 28))
    frame[4:24, 4:6] = frame[4:24, 22:24] = frame[4:6, 4:24] = frame[22:24, 4:24] = 1
    for field in (blot, frame):
        status, body = predict(base, json.dumps({"pixels": field.tolist()}).encode(), "application/json")
        assert status == 200 and body["label"] is not None
        assert body["uncertain"] is True and body["reasons"]


def test_details_give_activations_filters_and_saliency(server):
    base, _, _ = server
    status, body = predict(base, _png(ONE), query="?details=true")
    assert status == 200
    layers = body["activations"]
    assert [a["shape"] for a in layers][:2] == [[16, 28, 28], [16, 14, 14]]   # DeepConvNet's first blocks
    assert layers[-1]["shape"] == [10] and len(layers[-1]["values"]) == 10
    assert body["filters"]["shape"] == [16, 1, 3, 3] and body["filters"]["kind"] == "filters"
    saliency = np.array(body["saliency"])
    assert saliency.shape == (28, 28) and np.isfinite(saliency).all() and np.abs(saliency).max() > 0
    status, mlp = predict(base, _png(ONE), query="?details=true&model=run-mlp-test")
    assert status == 200
    assert [a["shape"] for a in mlp["activations"]] == [[30], [10]]
    assert mlp["filters"]["kind"] == "templates" and mlp["filters"]["shape"] == [784, 30]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_saliency_is_the_derivative_of_the_label_score(kind):
    """The backprop saliency against central differences of the score, on float64 copies."""
    from nnscratch.io import load_pretrained
    from nnscratch.models import MultiLayerNet
    from nnscratch.serve.inference import field_for_model, saliency

    model = (MultiLayerNet(784, [40, 20], 10, seed=3) if kind == "mlp" else load_pretrained()).astype("float64")
    rng = np.random.default_rng(1)
    field = rng.random((28, 28)) * (rng.random((28, 28)) > 0.6)
    label = 4
    grad = saliency(model, field, label)
    h = 1e-5
    for i, j in [(14, 14), (10, 17), (20, 8), (3, 3)]:
        plus, minus = field.copy(), field.copy()
        plus[i, j] += h
        minus[i, j] -= h
        numeric = (model.predict(field_for_model(model, plus))[0, label]
                   - model.predict(field_for_model(model, minus))[0, label]) / (2 * h)
        assert grad[i, j] == pytest.approx(numeric, rel=1e-4, abs=1e-7)


# ----------------------------------------------------------------------------- bad requests


def _raw(base, head: bytes, body: bytes = b"", timeout=10) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head + body)
        data = b""
        while True:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                length = [int(line.split(b":")[1]) for line in data[:head_end].lower().split(b"\r\n")
                          if line.startswith(b"content-length:")]
                if len(data) >= head_end + 4 + (length[0] if length else 0):
                    break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, data


def test_a_body_over_the_limit_is_refused_from_its_content_length_before_it_is_sent(server):
    base, _, _ = server
    started = time.monotonic()
    head = (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 1000000000\r\n\r\n")
    status, data = _raw(base, head)                   # no body at all: the answer must not wait for it
    assert status == 413 and b"at most" in data
    assert time.monotonic() - started < 5


def test_a_body_that_stops_arriving_is_answered_408(run_folder, tmp_path):
    with running_server(runs_dir=run_folder, digits_dir=tmp_path, body_timeout_s=1.0) as (base, app):
        head = (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 5000\r\n\r\n")
        started = time.monotonic()
        status, data = _raw(base, head, b"\x89PNG" + b"\x00" * 100)      # then nothing more
        assert status == 408 and b"did not arrive" in data
        assert time.monotonic() - started < 10


def _read_until_closed(sock) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_request_head_that_stops_arriving_is_answered_408_and_a_silent_connection_closed(run_folder, tmp_path):
    """uvicorn alone waits for a head for ever: a client sending half a header (or nothing) held a socket."""
    with running_server(runs_dir=run_folder, digits_dir=tmp_path, head_timeout_s=1.0) as (base, app):
        host, port = base.removeprefix("http://").split(":")
        address = (host, int(port))
        with socket.create_connection(address, timeout=10) as half, \
                socket.create_connection(address, timeout=10) as silent:
            started = time.monotonic()
            half.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nAccept: appl")          # then nothing
            answer = _read_until_closed(half)
            assert answer.startswith(b"HTTP/1.1 408 ") and b"headers did not arrive within 1 s" in answer
            assert _read_until_closed(silent) == b""
            assert time.monotonic() - started < 8
        # A head sent slowly but within the deadline is answered; the deadline starts again for the next
        # request on the kept-alive connection, whose head stalls in turn.
        with socket.create_connection(address, timeout=10) as slow:
            for part in (b"GET /api/models HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                slow.sendall(part)
                time.sleep(0.3)
            first = slow.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 ")
            slow.sendall(b"GET /api/models HTTP/1.1\r\nHo")
            rest = first + _read_until_closed(slow)
            assert rest.count(b"HTTP/1.1 200 ") == 1 and b"HTTP/1.1 408 " in rest


def test_a_chunked_body_over_the_limit_is_refused_while_read(server):
    base, _, _ = server
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = (b"\x00" * 1_000_000 for _ in range(12))     # 12 MB, over the 8 MB limit, no Content-Length
    connection.request("POST", "/api/predict", body=chunks, headers={"Content-Type": "image/png"},
                       encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    assert "over" in json.loads(response.read())["detail"]
    connection.close()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds almost no data (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("body, kind, status, words", [
    (_png_header_only(60_000, 60_000), "image/png", 413, "pixels"),
    (_png_header_only(9_000, 100), "image/png", 413, "pixels"),
    (_png(Image.new("L", (2000, 3), 255)), "image/png", 422, "elongated"),
    (_png(ONE)[:200], "image/png", 422, "cannot read image"),
    (b"GIF89a" + b"\x00" * 40, "image/png", 415, "PNG or JPEG"),
    (b"", "image/png", 400, "empty"),
    (b"hello", "text/plain", 415, "content type"),
    (b"hello", None, 415, "content type"),
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"\xff\xfe", "application/json", 400, "UTF-8"),
    (b"[1, 2]", "application/json", 422, "object"),
    (b"{}", "application/json", 422, "exactly one"),
    (json.dumps({"image": "x", "pixels": []}).encode(), "application/json", 422, "exactly one"),
    (json.dumps({"image": 5}).encode(), "application/json", 422, "data URL"),
    (json.dumps({"image": "data:image/gif;base64,R0lG"}).encode(), "application/json", 415, "image/gif"),
    (json.dumps({"image": "data:image/png;base64,!!!"}).encode(), "application/json", 422, "base64"),
    (json.dumps({"pixels": [[0.5] * 28] * 27}).encode(), "application/json", 422, "27 rows"),
    (json.dumps({"pixels": [[0.5] * 27] * 28}).encode(), "application/json", 422, "27 values"),
    (json.dumps({"pixels": [[2.0] * 28] * 28}).encode(), "application/json", 422, "2.0"),
    (json.dumps({"pixels": [[True] * 28] * 28}).encode(), "application/json", 422, "bool"),
    (json.dumps({"pixels": [["0.5"] * 28] * 28}).encode(), "application/json", 422, "str"),
    (("{\"pixels\": [" + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]}").encode(),
     "application/json", 422, "NaN"),
    (b'{"pixels": [[Infinity]]}', "application/json", 422, "Infinity"),
    (b"[" * 3_000 + b"]" * 3_000, "application/json", 400, "JSON"),         # deeper than Python's json goes
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 413, "values"),
    # 8 MB that would parse into 2.7 million lists (214 MB of Python objects): refused unparsed.
    (b'{"pixels": [' + b"[]," * 2_700_000 + b"[]]}", "application/json", 413, "at most 4,096"),
])
def test_bad_bodies_get_a_4xx_that_says_what_is_wrong(server, body, kind, status, words):
    base, _, _ = server
    got, answer = predict(base, body, kind)
    assert got == status, answer
    assert words in answer["detail"]


def test_bad_query_values_are_422(server):
    base, _, _ = server
    assert predict(base, _png(ONE), query="?details=maybe")[0] == 422
    assert predict(base, _png(ONE), query="?model=" + "x" * 500)[0] == 422
    assert call(base, "/api/digits?label=10", _png(ONE), "image/png")[0] == 422
    assert call(base, "/api/digits", _png(ONE), "image/png")[0] == 422
    assert call(base, "/api/predict", method="GET")[0] == 405
    assert call(base, "/static/../app.py")[0] == 404


def test_an_unexpected_error_is_a_clean_json_500_without_a_traceback(run_folder, tmp_path):
    # The one way to reach the catch-all: a route that fails (the API itself never does, see the fuzz test).
    with running_server(runs_dir=run_folder, digits_dir=tmp_path) as (base, app):
        def broken():
            raise RuntimeError("secret internals")
        app.add_api_route("/api/broken", broken)
        status, body = call(base, "/api/broken")
    assert status == 500
    assert body == {"detail": "internal error: RuntimeError"}


# ----------------------------------------------------------------------------- the user's digits


def test_it_was_a_saves_idx_files_that_evaluate_reads(server, tmp_path):
    from nnscratch.datasets.idx import read_idx

    base, _, digits = server
    drawings = [(ONE, 1), (ZERO, 0), (SEVEN, 7), (ONE, 7)]       # the last one deliberately mislabelled

    def save(item):
        image, label = item
        return call(base, f"/api/digits?label={label}", _png(image), "image/png")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:       # appends from concurrent requests
        results = list(pool.map(save, drawings * 3))
    assert all(status == 200 for status, _ in results)
    images = read_idx(digits / "t10k-images-idx3-ubyte")
    labels = read_idx(digits / "t10k-labels-idx1-ubyte")
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == sorted([1, 0, 7, 7] * 3)
    assert call(base, "/api/digits")[1]["counts"] == [3, 3, 0, 0, 0, 0, 0, 6, 0, 0]
    assert call(base, "/api/digits?label=3", _png(_canvas([])), "image/png")[0] == 422   # nothing drawn

    result = subprocess.run([sys.executable, "-m", "nnscratch.cli", "evaluate", "--data", str(digits)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "12 images" in result.stdout
    assert "accuracy: 75.00% (9/12)" in result.stdout     # the three mislabelled ones read as 1


def test_evaluate_data_on_a_folder_without_digits_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nnscratch.cli", "evaluate", "--data", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "t10k-images-idx3-ubyte" in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- OpenAPI, page, load


def test_openapi_documents_the_api(server):
    base, _, _ = server
    status, spec = call(base, "/openapi.json")
    assert status == 200
    assert {"/api/models", "/api/predict", "/api/digits", "/api/train"} <= set(spec["paths"])
    content = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"image/png", "image/jpeg", "application/json"} <= set(content)


def test_the_page_and_its_files_come_from_this_server_only(server):
    base, _, _ = server
    for path in ("/", "/static/app.js", "/static/style.css"):
        with urllib.request.urlopen(base + path, timeout=30) as response:
            text = response.read().decode()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    with urllib.request.urlopen(base + "/", timeout=30) as response:
        page = response.read().decode()
    for testid in ('data-testid="canvas"', 'data-testid="prediction"', 'data-testid="clear"'):
        assert testid in page


def test_load_several_concurrent_clients_no_errors(server):
    base, _, _ = server
    body = _png(SEVEN)

    def client(n):
        times = []
        for _ in range(n):
            started = time.perf_counter()
            status, answer = predict(base, body)
            times.append(time.perf_counter() - started)
            assert status == 200 and answer["label"] == 7
        return times

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        times = sorted(t for ts in pool.map(client, [10] * 6) for t in ts)
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    print(f"\nload: 6 clients x 10 requests, 0 errors, p50 {1000 * p50:.1f} ms, p99 {1000 * p99:.1f} ms")
    assert len(times) == 60


# ----------------------------------------------------------------------------- the Train view's API


def _events(base, timeout=120):
    """Read GET /api/train/events to its end: [(event type, data)]; fails after ``timeout`` s in all
    (the stream's keep-alive comments would reset a per-read timeout forever)."""
    events = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(base + "/api/train/events", timeout=timeout) as response:
        kind = None
        for raw in response:
            assert time.monotonic() < deadline, f"the event stream did not end within {timeout} s"
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: "):])))
    return events


def test_a_run_started_from_the_page_streams_and_joins_the_picker(tmp_path):
    runs = tmp_path / "runs"
    with running_server(runs_dir=runs, digits_dir=tmp_path / "digits") as (base, app):
        assert call(base, "/api/train")[1]["state"] == "idle"
        settings = {"model": "mlp", "hidden": [20], "epochs": 2, "limit": 1000}
        status, started = call(base, "/api/train", json.dumps(settings).encode(), "application/json")
        assert status == 202 and started["state"] == "running"
        events = _events(base)
        kinds = [k for k, _ in events]
        assert kinds[0] == "begin" and kinds[-1] == "end" and "done" in kinds
        epochs = [e for k, e in events if k == "epoch"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        assert all(0 <= e["test_acc"] <= 1 and e["train_loss"] > 0 for e in epochs)
        assert epochs[-1]["filters"]["shape"] == [784, 20]
        assert any(k == "batch" and e["loss"] > 0 for k, e in events)
        final = events[-1][1]
        assert final["state"] == "done" and final["interrupted"] is False
        model_id = final["model_id"]
        assert (runs / final["run"] / "model.npz").is_file()
        assert model_id in [m["id"] for m in call(base, "/api/models")[1]["models"]]
        status, reading = predict(base, _png(ONE), query=f"?model={model_id}")
        assert status == 200 and reading["model"] == model_id and len(reading["probabilities"]) == 10


def test_one_run_at_a_time_and_stop(tmp_path):
    with running_server(runs_dir=tmp_path / "runs", digits_dir=tmp_path / "digits") as (base, app):
        settings = json.dumps({"model": "mlp", "epochs": 20, "limit": 20000}).encode()
        assert call(base, "/api/train", settings, "application/json")[0] == 202
        status, body = call(base, "/api/train", settings, "application/json")
        assert status == 409 and "already running" in body["detail"]
        time.sleep(0.5)
        assert call(base, "/api/train/stop", b"", method="POST")[0] == 200
        final = _events(base)[-1][1]
        assert final["state"] == "done" and final["interrupted"] is True
        assert call(base, "/api/train", json.dumps({"epochs": 1, "limit": 500}).encode(),
                    "application/json")[0] == 202        # free again
        app.state.job.wait(120)


@pytest.mark.parametrize("settings, words", [
    ({"model": "deep-cnn"}, "model must be one of"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 1000}, "epochs"),
    ({"limit": 5}, "limit"),
    ({"hidden": [0]}, "hidden"),
    ({"hidden": "big"}, "hidden"),
    ({"path": "/etc"}, "unknown run settings"),
    ({"optimizer": "magic"}, "optimizer"),
    ({"lr": "fast"}, "lr"),
    ({"lr": -1}, "lr"),
    ({"batch_size": 1}, "batch_size"),
    ([1], "object"),
])
def test_bad_run_settings_are_422(tmp_path, settings, words):
    with running_server(runs_dir=tmp_path / "runs", digits_dir=tmp_path / "digits") as (base, app):
        status, body = call(base, "/api/train", json.dumps(settings).encode(), "application/json")
    assert status == 422, body
    assert words in body["detail"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------------- models that cannot be used


def test_a_broken_or_foreign_model_file_is_a_422_naming_it(tmp_path):
    from nnscratch import io as nnio
    from nnscratch.models import MultiLayerNet

    runs = tmp_path / "runs"
    (runs / "broken").mkdir(parents=True)
    (runs / "broken" / "model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (runs / "tiny-input").mkdir()
    nnio.save_model(MultiLayerNet(100, [10], 10, seed=0), runs / "tiny-input" / "model.npz")
    with running_server(runs_dir=runs, digits_dir=tmp_path / "digits") as (base, app):
        ids = {m["name"]: m["id"] for m in call(base, "/api/models")[1]["models"]}
        status, body = predict(base, _png(ONE), query=f"?model={ids['broken']}")
        assert status == 422 and "model.npz" in body["detail"]
        status, body = predict(base, _png(ONE), query=f"?model={ids['tiny-input']}")
        assert status == 422 and "28x28" in body["detail"]
        assert predict(base, _png(ONE))[0] == 200                     # the others still work


# ----------------------------------------------------------------------------- the command


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nnscratch_serve_serves_the_page(tmp_path):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "nnscratch.cli", "serve", "--port", str(port),
                                "--runs", str(tmp_path / "runs"), "--digits", str(tmp_path / "digits")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200 and b'data-testid="canvas"' in response.read()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "nnscratch serve did not answer"
                time.sleep(0.2)
        status, body = predict(f"http://127.0.0.1:{port}", _png(SEVEN))
        assert status == 200 and body["label"] == 7
        # No 40 ms stall per answer (Nagle's algorithm meeting delayed ACKs on a keep-alive connection).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        times = []
        for _ in range(15):
            began = time.perf_counter()
            connection.request("GET", "/api/train")
            connection.getresponse().read()
            times.append(time.perf_counter() - began)
        connection.close()
        assert statistics.median(times) < 0.035, times
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert f"http://localhost:{port}/" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("args, words", [
    (["--model", "missing.npz"], "missing.npz"),
    (["--port", "70000"], "--port"),
])
def test_nnscratch_serve_refuses_bad_options_in_one_line(tmp_path, args, words):
    result = subprocess.run([sys.executable, "-m", "nnscratch.cli", "serve", *args], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and words in result.stderr and "Traceback" not in result.stderr


def test_nnscratch_serve_on_a_port_in_use_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "nnscratch.cli", "serve", "--port", str(port)],
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error: " in result.stderr and str(port) in result.stderr and "Traceback" not in result.stderr


def test_a_digit_folder_left_uneven_by_a_crash_is_evened_by_the_next_save(tmp_path):
    from nnscratch.datasets.idx import read_idx, write_idx
    from nnscratch.errors import DatasetError
    from nnscratch.serve.digits import DigitFolder, read_digit_folder

    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28) % 251
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images.astype(np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([4, 5], np.uint8))   # the third label never landed
    with pytest.raises(DatasetError, match="3 images but 2 labels"):
        read_digit_folder(tmp_path)
    field = np.zeros((28, 28))
    field[5:20, 14] = 1.0
    assert DigitFolder(tmp_path).append(field, 1) == 3
    saved_images, saved_labels = read_digit_folder(tmp_path)
    assert saved_labels.tolist() == [4, 5, 1]
    assert np.array_equal(saved_images[:2], images[:2].astype(np.uint8))
    assert saved_images[2, 5:20, 14].tolist() == [255] * 15 and saved_images[2].sum() == 255 * 15
    assert read_idx(tmp_path / "t10k-images-idx3-ubyte").shape == (3, 28, 28)


def test_the_catalog_keeps_a_bounded_number_of_models_and_reloads_a_changed_file(tmp_path):
    from nnscratch import io as nnio
    from nnscratch.models import MultiLayerNet
    from nnscratch.serve import catalog as catalog_module

    runs = tmp_path / "runs"
    for k in range(catalog_module.MAX_LOADED + 3):
        (runs / f"r{k:02d}").mkdir(parents=True)
        nnio.save_model(MultiLayerNet(784, [5], 10, seed=k), runs / f"r{k:02d}" / "model.npz")
    catalog = catalog_module.ModelCatalog((), runs, pretrained=False)
    ids = [entry["id"] for entry in catalog.refresh()]
    first = catalog.get(ids[0])
    for model_id in ids:
        catalog.get(model_id)
    assert len(catalog._loaded) == catalog_module.MAX_LOADED
    assert ids[0] not in catalog._loaded               # the least recently used went first
    # A run folder's model rewritten (a new run of the same name): the new weights are used.
    path = runs / ids[-1].removeprefix("run-") / "model.npz"
    before = catalog.get(ids[-1]).model
    nnio.save_model(MultiLayerNet(784, [5], 10, seed=999), path)
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    after = catalog.get(ids[-1]).model
    assert after is not before and not np.array_equal(after.params["W1"], before.params["W1"])
    assert first is not catalog.get(ids[0])            # loaded again when asked again


def test_large_pictures_are_decoded_a_few_at_a_time(run_folder, tmp_path, monkeypatch):
    """Many large pictures at once: at most max_large_pictures are decoded together (memory), and a
    canvas-sized drawing is not held back behind them."""
    import threading

    from nnscratch import imaging

    real = imaging.prepare_digit_stages
    lock = threading.Lock()
    now = {"large": 0, "most": 0, "done": 0, "done_when_small": None}

    def counted(image):
        large = Image.open(image).size[0] > 1000
        image.seek(0)
        with lock:
            now["large"] += large
            now["most"] = max(now["most"], now["large"])
            if not large:
                now["done_when_small"] = now["done"]
        try:
            time.sleep(0.3 if large else 0)        # long enough that unbounded decodes would overlap
            return real(image)
        finally:
            with lock:
                now["large"] -= large
                now["done"] += large

    monkeypatch.setattr(imaging, "prepare_digit_stages", counted)
    big = _canvas([("line", [(1500, 300), (1500, 2700)])], size=3000, width=150)
    body = _png(big)
    with running_server(runs_dir=run_folder, digits_dir=tmp_path, max_large_pictures=2) as (base, app):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            large = [pool.submit(predict, base, body) for _ in range(6)]
            time.sleep(0.2)
            small = predict(base, _png(ONE))
            results = [f.result() for f in large]
    assert all(status == 200 and answer["label"] == 1 for status, answer in results)
    assert small[0] == 200 and small[1]["label"] == 1
    assert now["most"] == 2
    assert now["done_when_small"] < 4          # queued behind them it would come after the fifth


def test_the_run_keeps_only_the_newest_filters_picture(tmp_path):
    """Filters pictures are tens of kilobytes each and come every second: a long run must not keep
    (and replay to a late subscriber) thousands of them."""
    from nnscratch.serve.training import TrainingJob

    job = TrainingJob(tmp_path)
    picture = {"image": "data:image/png;base64," + "A" * 40_000}
    for k in range(1, 301):
        job._emit({"type": "batch", "iteration": k, "loss": 1.0, **({"filters": picture} if k % 3 == 0 else {})})
    events, _ = job.events_after(0)
    assert len(events) == 300 and [e["iteration"] for _, e in events] == list(range(1, 301))
    assert [e["iteration"] for _, e in events if "filters" in e] == [300]
    assert len(json.dumps([e for _, e in events])) < 60_000


def test_a_reconnecting_event_stream_gets_only_the_events_it_has_not_seen(tmp_path):
    """EventSource reconnects with Last-Event-ID after a dropped connection; replaying from the start
    would add every epoch row to the page's table again once the run's first events are trimmed."""
    with running_server(runs_dir=tmp_path / "runs", digits_dir=tmp_path / "digits") as (base, app):
        settings = {"model": "mlp", "hidden": [10], "epochs": 2, "limit": 500}
        assert call(base, "/api/train", json.dumps(settings).encode(), "application/json")[0] == 202
        app.state.job.wait(120)

        def ids(headers):
            request = urllib.request.Request(base + "/api/train/events", headers=headers)
            with urllib.request.urlopen(request, timeout=60) as response:
                return [int(line[4:]) for line in response.read().decode().splitlines() if line.startswith("id: ")]

        every = ids({})
        assert len(every) >= 4 and every == sorted(every)
        assert ids({"Last-Event-ID": str(every[1])}) == every[2:]
        assert ids({"Last-Event-ID": "junk"}) == every


def test_a_digits_folder_that_cannot_be_written_is_a_500_that_says_so(run_folder, tmp_path):
    blocked = tmp_path / "digits"
    blocked.write_text("a file where the digits folder should be")
    with running_server(runs_dir=run_folder, digits_dir=blocked) as (base, app):
        status, body = call(base, "/api/digits?label=1", _png(ONE), "image/png")
        assert status == 500
        assert body["detail"].startswith(f"cannot save to the digits folder {blocked}: File exists")
        assert call(base, "/api/digits")[1]["total"] == 0
        assert "500" in call(base, "/openapi.json")[1]["paths"]["/api/digits"]["post"]["responses"]


def test_unknown_ids_do_not_each_buy_a_scan_of_the_runs_folder(tmp_path, monkeypatch):
    from nnscratch import io as nnio
    from nnscratch.models import MultiLayerNet
    from nnscratch.serve import catalog as catalog_module

    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    nnio.save_model(MultiLayerNet(784, [5], 10, seed=0), runs / "a" / "model.npz")
    catalog = catalog_module.ModelCatalog((), runs, pretrained=False)
    scans = []
    real = catalog._run_files
    monkeypatch.setattr(catalog, "_run_files", lambda: scans.append(1) or real())
    catalog.refresh()
    for k in range(50):
        with pytest.raises(catalog_module.UnknownModelError):
            catalog.get(f"run-nope-{k}")
    assert len(scans) == 1                       # the listing just made serves them all
    # A run added since is found by its id once the rescan interval has passed.
    monkeypatch.setattr(catalog_module, "RESCAN_AFTER_S", 0.05)
    (runs / "b").mkdir()
    nnio.save_model(MultiLayerNet(784, [5], 10, seed=1), runs / "b" / "model.npz")
    time.sleep(0.06)
    assert catalog.get("run-b").id == "run-b"
    assert len(scans) == 2


def test_a_run_whose_picker_update_fails_still_ends(tmp_path, monkeypatch):
    """The run is saved; a failure listing it afterwards (a run folder removed mid-scan) must not leave
    the job 'running' forever (events stream never ending, every new run refused with 409)."""
    with running_server(runs_dir=tmp_path / "runs", digits_dir=tmp_path / "digits") as (base, app):
        def vanished():
            raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "runs" / "gone"))

        monkeypatch.setattr(app.state.catalog, "refresh", vanished)
        settings = {"model": "mlp", "hidden": [10], "epochs": 1, "limit": 500}
        assert call(base, "/api/train", json.dumps(settings).encode(), "application/json")[0] == 202
        app.state.job.wait(60)
        assert call(base, "/api/train")[1]["state"] == "done"      # not left 'running' by a dead thread
        events = _events(base, timeout=60)
        final = events[-1][1]
        assert events[-1][0] == "end" and final["state"] == "done"
        assert "picker could not be updated" in final["note"]
        assert (tmp_path / "runs" / final["run"] / "model.npz").is_file()
        assert call(base, "/api/train", json.dumps(settings).encode(), "application/json")[0] == 202
        app.state.job.wait(60)


def test_a_run_removed_while_the_runs_folder_is_listed_is_left_out(tmp_path, monkeypatch):
    """A model file deleted between the folder scan and sorting by time: the listing goes on
    (it raised FileNotFoundError: GET /api/models answered 500)."""
    from pathlib import Path as PathType

    from nnscratch import io as nnio
    from nnscratch.models import MultiLayerNet
    from nnscratch.serve.catalog import ModelCatalog

    runs = tmp_path / "runs"
    for name in ("keep", "gone"):
        (runs / name).mkdir(parents=True)
        nnio.save_model(MultiLayerNet(784, [5], 10, seed=0), runs / name / "model.npz")
    real_exists = PathType.exists
    asked = []

    def checked_then_removed(path):
        answer = real_exists(path)
        if path.parent.name == "gone" and path.name == "model.npz" and answer:
            asked.append(path)
            if len(asked) == 2:              # glob asked first; the second check is the listing's own
                path.unlink()                # another process removes the run right after it
        return answer

    monkeypatch.setattr(PathType, "exists", checked_then_removed)
    names = [entry["name"] for entry in ModelCatalog((), runs, pretrained=False).refresh()]
    assert "keep" in names


def test_a_client_that_leaves_mid_body_is_not_logged_as_a_server_error(server, caplog):
    """Closing the page during an upload: each such request logged ~100 lines of traceback as an error."""
    import logging

    base, _, _ = server
    host, port = base.removeprefix("http://").split(":")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                          b"Content-Length: 5000\r\n\r\n" + b"x" * 100)
                time.sleep(0.1)
        assert predict(base, _png(ONE))[0] == 200          # served after them, so they have been handled
        time.sleep(0.3)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_nnscratch_serve_on_ipv6_prints_a_url_that_opens(tmp_path):
    """--host ::1 printed http://::1:PORT/, which no browser opens; the address goes in brackets."""
    process = subprocess.Popen([sys.executable, "-m", "nnscratch.cli", "serve", "--host", "::1", "--port", "0",
                                "--runs", str(tmp_path / "runs"), "--digits", str(tmp_path / "digits")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        url = line.split(" is on ")[1].split()[0]
        assert url.startswith("http://[::1]:"), line
        deadline = time.monotonic() + 60                 # the line comes just before uvicorn serves
        while True:
            try:
                with urllib.request.urlopen(url + "api/models", timeout=30) as response:
                    assert response.status == 200
                break
            except urllib.error.URLError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        process.terminate()
        process.communicate(timeout=30)
