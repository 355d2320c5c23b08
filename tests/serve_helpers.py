"""A real drawing-page server on 127.0.0.1 for the serve tests (uvicorn in a thread)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(head_timeout_s=None, **app_kwargs):
    """Start ``create_app(**app_kwargs)`` on uvicorn as ``nnscratch serve`` does; yields the base URL
    and the app, stops it after."""
    import uvicorn

    from nnscratch.serve import create_app
    from nnscratch.serve.protocol import HEAD_TIMEOUT_S, config

    app = create_app(**app_kwargs)
    port = free_port()
    server = uvicorn.Server(config(app, head_timeout_s=head_timeout_s or HEAD_TIMEOUT_S, host="127.0.0.1",
                                   port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="serve-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)
