"""``nnscratch serve``: the argparse part (light) and the command (imports the web stack)."""

from __future__ import annotations

import argparse
import socket

__all__ = ["add_parser", "cmd_serve"]


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, and the defaults that tell the reader something."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def add_parser(commands) -> argparse.ArgumentParser:
    """Register ``serve`` on the CLI's subparsers; imports nothing heavy."""
    serve = commands.add_parser(
        "serve", help="the drawing page: draw digits in the browser and watch the network read them",
        formatter_class=_Formatter,
        description="Serve the drawing page on http://HOST:PORT: draw a digit with the mouse, a finger or\n"
                    "a pen, and see the network read it live, layer by layer. Works offline.\n"
                    "The HTTP API is described at /openapi.json.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (0.0.0.0 also lets other machines in: the page has no login)")
    serve.add_argument("--port", type=int, default=8000, help="port")
    serve.add_argument("--model", metavar="FILE", nargs="+", default=None, dest="models",
                       help="model files (or run folders) to offer besides the pretrained DeepConvNet")
    serve.add_argument("--runs", metavar="DIR", default="runs",
                       help="runs folder: its model.npz files are offered, and runs started from the page go there")
    serve.add_argument("--digits", metavar="DIR", default="digits",
                       help="folder where the 'It was a ...' buttons save your digits (for evaluate --data)")
    serve.set_defaults(func=cmd_serve)
    return serve


def cmd_serve(args) -> int:
    from nnscratch.errors import ConfigError
    from nnscratch.extras import require

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    uvicorn = require("uvicorn", "serve", "the drawing page (nnscratch serve)")
    from .app import create_app

    app = create_app(models=args.models or (), runs_dir=args.runs, digits_dir=args.digits)
    # The socket is bound here, so that a port in use is one error line, not uvicorn's log and exit 3.
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such sockets; without it
        # Nagle's algorithm and delayed ACKs add 40 ms to every answer.
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((args.host, args.port))
    except (OSError, OverflowError) as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    port = listener.getsockname()[1]
    shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::") else args.host
    if ":" in shown:   # an IPv6 address goes in brackets in a URL: http://[::1]:8000/
        shown = f"[{shown}]"
    print(f"nnscratch: the drawing page is on http://{shown}:{port}/  (Ctrl-C to stop)", flush=True)
    from .protocol import config

    server = uvicorn.Server(config(app, log_level="warning"))
    server.run(sockets=[listener])
    return 0
