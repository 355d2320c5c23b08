"""Latency and throughput of the drawing page's POST /api/predict.

A real ``nnscratch serve`` runs in its own process on 127.0.0.1; 1 and then 8
client threads (keep-alive connections) post the same canvas PNG (280x280
RGBA, black strokes on a transparent background, as the page sends) for the
pretrained DeepConvNet. Prints p50/p99 latency and requests per second for
each, with and without ``details`` (activations, saliency, filters), and a
breakdown of one request's work measured in this process.

Targets on the 2-core machine: p50 <= 25 ms with one client, >= 60 requests/s
with 8.

Usage: .venv/bin/python bench/serve_latency.py [--seconds 5] [--port 0]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageDraw


def canvas_png() -> bytes:
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line([(70, 60), (210, 60), (120, 240)], fill=(0, 0, 0, 255), width=18, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    process = subprocess.Popen([sys.executable, "-m", "nnscratch.cli", "serve", "--port", str(port),
                                "--runs", str(folder / "runs"), "--digits", str(folder / "digits")],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/models")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise SystemExit(f"the server did not start: {process.stderr.read().decode()}")
    process.kill()
    raise SystemExit("the server did not answer within 60 s")


def run_clients(port: int, body: bytes, clients: int, seconds: float, query: str) -> tuple[list[float], float, int]:
    """`clients` threads post `body` for `seconds`; returns latencies, wall time and error count."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(k: int):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "image/png"}
        start.wait()
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            connection.request("POST", "/api/predict" + query, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            latencies[k].append(time.perf_counter() - began)
            if response.status != 200 or json.loads(payload)["label"] != 7:
                errors[k] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return [t for ts in latencies for t in ts], time.perf_counter() - began, sum(errors)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def breakdown(body: bytes, repeats: int = 50) -> dict:
    """Median milliseconds of each step of one reading, in this process."""
    from nnscratch.serve import answer as answers
    from nnscratch.serve.catalog import ModelCatalog
    from nnscratch.serve.inputs import parse_body

    loaded = ModelCatalog(()).get("pretrained")
    steps = {"decode PNG": lambda: parse_body("image/png", body)}
    drawing = parse_body("image/png", body)
    steps["prepare (crop, fit, centre)"] = lambda: answers.prepare(drawing)
    stages = answers.prepare(drawing)
    steps["model + verdict + JSON"] = lambda: json.dumps(answers.answer(loaded, stages))
    steps["same with details"] = lambda: json.dumps(answers.answer(loaded, stages, details=True))
    result = {}
    for name, step in steps.items():
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            step()
            times.append(time.perf_counter() - began)
        result[name] = 1000 * statistics.median(times)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    args = parser.parse_args()
    body = canvas_png()
    port = args.port or free_port()
    print(f"nnscratch serve on 127.0.0.1:{port}, pretrained DeepConvNet, canvas PNG of {len(body)} bytes, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(port, Path(folder))
        try:
            run_clients(port, body, 1, 1.0, "")       # warm-up: the model loads on first use
            print(f"{'clients':>7} {'details':>7} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>7}")
            for query, details in (("", "no"), ("?details=true", "yes")):
                for clients in (1, 8):
                    latencies, wall, errors = run_clients(port, body, clients, args.seconds, query)
                    latencies.sort()
                    print(f"{clients:>7} {details:>7} {len(latencies):>8} {errors:>6} "
                          f"{1000 * statistics.median(latencies):>7.1f} {1000 * percentile(latencies, 0.99):>7.1f} "
                          f"{len(latencies) / wall:>7.1f}")
        finally:
            server.terminate()
            server.wait(10)
    print("\none request's work in this process (median ms):")
    for name, ms in breakdown(body).items():
        print(f"  {name:<30} {ms:6.2f}")


if __name__ == "__main__":
    main()
