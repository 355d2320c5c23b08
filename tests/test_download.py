"""Downloads against a real HTTP server on 127.0.0.1 (never the internet)."""

import gzip
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.datasets import DatasetInfo, SourceFile, download_dataset, download_file, load_dataset, write_idx
from nnscratch.datasets.download import resolve_mirrors
from nnscratch.errors import DownloadError

EMBEDDED = Path(nnscratch.__file__).parent / "datasets" / "data" / "mnist"
PAYLOAD = bytes(range(256)) * 2000  # 512,000 bytes: several chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (behaviour, body)``; anything else is a 404."""

    def do_GET(self):
        behaviour, body = self.server.routes.get(self.path, ("missing", b""))
        self.server.hits.append(self.path)
        if behaviour == "missing":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if behaviour != "no length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "drop":  # promise the whole body, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif behaviour == "stall":
            self.wfile.write(body[:100])
            self.wfile.flush()
            time.sleep(1.5)
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.routes = {}
    httpd.hits = []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here any more: connection refused
    return f"http://127.0.0.1:{port}"


def leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir())


def test_good_download_with_progress(server, tmp_path):
    server.routes["/a/file.bin"] = ("ok", PAYLOAD)
    calls = []
    path = download_file([server.url + "/a/file.bin"], tmp_path / "sub" / "file.bin", sha256=PAYLOAD_SHA,
                         progress=lambda url, done, total: calls.append((url, done, total)))
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "sub") == ["file.bin"]
    assert calls[0] == (server.url + "/a/file.bin", 0, len(PAYLOAD))
    assert calls[-1][1:] == (len(PAYLOAD), len(PAYLOAD))
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)


def test_without_content_length(server, tmp_path):
    server.routes["/f"] = ("no length", PAYLOAD)
    calls = []
    download_file([server.url + "/f"], tmp_path / "f", sha256=PAYLOAD_SHA,
                  progress=lambda url, done, total: calls.append(total))
    assert (tmp_path / "f").read_bytes() == PAYLOAD
    assert set(calls) == {None}


def test_404_then_working_mirror(server, tmp_path):
    server.routes["/good/f"] = ("ok", PAYLOAD)
    path = download_file([server.url + "/bad/f", server.url + "/good/f"], tmp_path / "f", sha256=PAYLOAD_SHA)
    assert path.read_bytes() == PAYLOAD
    assert server.hits == ["/bad/f", "/good/f"]
    assert leftovers(tmp_path) == ["f"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.routes["/f"] = ("ok", PAYLOAD[:-1] + b"X")
    with pytest.raises(DownloadError) as info:
        download_file([server.url + "/f"], tmp_path / "f", sha256=PAYLOAD_SHA)
    assert "SHA-256 mismatch" in str(info.value)
    assert PAYLOAD_SHA in str(info.value)
    assert leftovers(tmp_path) == []


def test_connection_dropped_mid_file_then_next_mirror(server, tmp_path):
    server.routes["/drop/f"] = ("drop", PAYLOAD)
    server.routes["/good/f"] = ("ok", PAYLOAD)
    download_file([server.url + "/drop/f", server.url + "/good/f"], tmp_path / "f", sha256=PAYLOAD_SHA)
    assert (tmp_path / "f").read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["f"]


def test_connection_dropped_everywhere(server, tmp_path):
    server.routes["/drop/f"] = ("drop", PAYLOAD)
    with pytest.raises(DownloadError, match=f"connection closed after .* of {len(PAYLOAD)} bytes"):
        download_file([server.url + "/drop/f"], tmp_path / "f", sha256=PAYLOAD_SHA)
    assert leftovers(tmp_path) == []


def test_stalled_server_times_out(server, tmp_path):
    server.routes["/slow"] = ("stall", PAYLOAD)
    with pytest.raises(DownloadError, match="timed out"):
        download_file([server.url + "/slow"], tmp_path / "f", sha256=PAYLOAD_SHA, timeout=0.3)
    assert leftovers(tmp_path) == []


def test_all_mirrors_failing_lists_every_url(server, tmp_path, closed_port_url):
    server.routes["/drop/f"] = ("drop", PAYLOAD)
    server.routes["/wrong/f"] = ("ok", b"not it")
    urls = [server.url + "/missing/f", closed_port_url + "/f", server.url + "/drop/f",
            server.url + "/wrong/f", "gopher://nowhere/f"]
    (tmp_path / "f").write_bytes(b"an older good copy")
    with pytest.raises(DownloadError) as info:
        download_file(urls, tmp_path / "f", sha256=PAYLOAD_SHA)
    message = str(info.value)
    for url in urls:
        assert url in message
    assert "HTTP 404" in message and "cannot connect" in message and "SHA-256 mismatch" in message
    assert "by hand" in message and str(tmp_path / "f") in message
    assert [url for url, _ in info.value.attempts] == urls
    assert (tmp_path / "f").read_bytes() == b"an older good copy"  # untouched
    assert leftovers(tmp_path) == ["f"]


def test_mirror_override_parsing(monkeypatch):
    defaults = ["https://example.org/{dataset}/"]
    monkeypatch.delenv("NNSCRATCH_MIRRORS", raising=False)
    assert resolve_mirrors(defaults, dataset="kmnist") == ["https://example.org/kmnist/"]
    assert resolve_mirrors(defaults, "http://a/{dataset}, http://b/", dataset="x") == ["http://a/x", "http://b/"]
    monkeypatch.setenv("NNSCRATCH_MIRRORS", "http://c/ http://d/{dataset}")
    assert resolve_mirrors(defaults, dataset="m") == ["http://c/", "http://d/m"]
    assert resolve_mirrors(defaults, ["http://e/"], dataset="m") == ["http://e/"]


def serve_mnist(server):
    for gz in EMBEDDED.glob("*.gz"):
        server.routes[f"/mirror/mnist/{gz.name}"] = ("ok", gz.read_bytes())


def test_download_mnist_then_load_it(server, tmp_path):
    serve_mnist(server)
    paths = download_dataset("mnist", tmp_path, mirrors=[server.url + "/empty/", server.url + "/mirror/{dataset}/"])
    assert sorted(p.name for p in paths.values()) == sorted(g.name for g in EMBEDDED.glob("*.gz"))
    assert leftovers(tmp_path / "mnist") == sorted(g.name for g in EMBEDDED.glob("*.gz"))
    for path in paths.values():
        assert path.read_bytes() == (EMBEDDED / path.name).read_bytes()
    _, (x_test, t_test) = load_dataset("mnist", normalize=False, data_dir=tmp_path, limit=10)
    assert t_test.tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert '"path": "' + str((tmp_path / "mnist").resolve()) in (tmp_path / "mnist" / "decoded" / "manifest.json").read_text()
    hits = len(server.hits)
    download_dataset("mnist", tmp_path, mirrors=[server.url + "/mirror/{dataset}/"])  # already there
    assert len(server.hits) == hits


def tiny_dataset(tmp_path, server):
    """A small MNIST-format dataset served by the test server, with its real SHA-256s."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "t_train": rng.integers(0, 10, 30).astype(np.uint8),
        "x_test": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "t_test": rng.integers(0, 10, 12).astype(np.uint8),
    }
    build = tmp_path / "build"
    build.mkdir()
    files = {}
    for role, array in arrays.items():
        name = f"{role}-idx.gz"
        content = write_idx(build / name, array).read_bytes()
        server.routes[f"/tiny/{name}"] = ("ok", content)
        files[role] = SourceFile(name, (hashlib.sha256(content).hexdigest(),))
    info = DatasetInfo(name="tiny", title="tiny test set", files=files, mirrors=(server.url + "/tiny/",),
                       classes=tuple("0123456789"), credit="test", homepage="")
    return info, arrays


def test_non_embedded_dataset_downloads_on_first_load(server, tmp_path, monkeypatch):
    info, arrays = tiny_dataset(tmp_path, server)
    monkeypatch.delenv("NNSCRATCH_MIRRORS", raising=False)
    seen = []
    (x_train, t_train), (x_test, t_test) = load_dataset(
        info, normalize=False, flatten=False, data_dir=tmp_path / "data",
        progress=lambda url, done, total: seen.append(url))
    np.testing.assert_array_equal(x_train[:, 0], arrays["x_train"])
    np.testing.assert_array_equal(t_test, arrays["t_test"])
    assert {url.rsplit("/", 1)[1] for url in seen} == {f.filename for f in info.files.values()}
    hits = len(server.hits)
    load_dataset(info, data_dir=tmp_path / "data")  # second load: no network
    assert len(server.hits) == hits


def test_env_mirrors_and_failing_dataset_download(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", f"{server.url}/nothing/{{dataset}}/ {server.url}/also-nothing/")
    with pytest.raises(DownloadError) as info:
        load_dataset("kmnist", data_dir=tmp_path)
    message = str(info.value)
    assert f"{server.url}/nothing/kmnist/train-images-idx3-ubyte.gz" in message
    assert f"{server.url}/also-nothing/train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "kmnist" / "train-images-idx3-ubyte.gz") in message
    assert not (tmp_path / "kmnist").exists() or leftovers(tmp_path / "kmnist") == []
    assert all(not hit.startswith("/mirror") for hit in server.hits)


def test_corrupt_downloaded_file_is_rejected_when_loading(server, tmp_path):
    """A file placed by hand that is not the published one fails its SHA-256 with a clear error."""
    from nnscratch.errors import DatasetError

    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    for role in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (folder / f"{role}.gz").write_bytes(gzip.compress(b"not fashion"))
    with pytest.raises(DatasetError, match="SHA-256"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    ({"sha256": []}, "sha256: at least one"),
    ({"sha256": PAYLOAD_SHA, "timeout": 0}, "timeout: expected a positive number"),
])
def test_bad_arguments_raise_config_error_before_any_request(server, tmp_path, kwargs, match):
    from nnscratch.errors import ConfigError

    server.routes["/f"] = ("ok", PAYLOAD)
    with pytest.raises(ConfigError, match=match):
        download_file([server.url + "/f"], tmp_path / "f", **kwargs)
    assert server.hits == [] and leftovers(tmp_path) == []
