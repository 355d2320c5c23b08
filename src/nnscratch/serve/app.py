"""The drawing page's web application (FastAPI): the page, and the HTTP API behind it.

``create_app(models=..., runs_dir=..., digits_dir=...)`` returns the ASGI app;
``nnscratch serve`` runs it on uvicorn. Routes:

* ``GET /`` and ``/static/...``: the page (HTML, JS, CSS shipped in the package;
  nothing comes from another host).
* ``GET /api/models``: the models one can pick.
* ``POST /api/predict[?model=ID&details=true]``: read a drawing.
* ``GET /api/digits``, ``POST /api/digits?label=K``: the folder of the user's own digits.
* ``GET/POST /api/train``, ``POST /api/train/stop``, ``GET /api/train/events`` (server-sent
  events): a small training run started from the page.

Every request the server cannot use gets a 4xx JSON answer ``{"detail": "..."}``
that says what is wrong: bodies are refused by their Content-Length before
being read, and by their length while being read; pictures by their header
before being decoded.
"""


import asyncio
import json
import logging
import re
from importlib import resources
from pathlib import Path

from nnscratch import __version__
from nnscratch.errors import ConfigError, ImageInputError, ModelFileError, NnscratchError, ShapeError
from nnscratch.extras import require

from . import answer as answers
from .catalog import PRETRAINED_ID, ModelCatalog, UnknownModelError
from .digits import DigitFolder
from .inputs import MAX_BODY_BYTES, BadInput, parse_body, parse_json
from .training import TrainingJob

__all__ = ["create_app"]

log = logging.getLogger("nnscratch.serve")

STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
MAX_MODEL_ID = 120
BODY_TIMEOUT_S = 30.0
# Pictures above this many pixels are decoded at most MAX_LARGE_PICTURES at a time: decoding one
# costs about 7 bytes a pixel (a 4000x4000 PNG of 62 kB, 110 MB), and 24 at once took 2.9 GB.
# A canvas export (280x280, or 1000x1000 on a phone at 3x) is never held back.
LARGE_PICTURE_PIXELS = 2_000_000
MAX_LARGE_PICTURES = 2
_MODEL_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_MODEL_ID}}}")

# The request bodies of POST /api/predict and /api/digits, for the OpenAPI document.
_PIXELS_SCHEMA = {"type": "array", "minItems": 28, "maxItems": 28,
                  "items": {"type": "array", "minItems": 28, "maxItems": 28,
                            "items": {"type": "number", "minimum": 0, "maximum": 1}}}
_PICTURE_BODY = {
    "required": True,
    "description": "The drawing: a PNG or JPEG picture (an RGBA canvas export with a transparent "
                   "background works), or JSON with a data URL of one, or the 28x28 field itself "
                   "(white digit on black, values 0..1, as MNIST).",
    "content": {
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"oneOf": [
            {"type": "object", "title": "Picture", "required": ["image"], "additionalProperties": False,
             "properties": {"image": {"type": "string", "pattern": "^data:image/(png|jpeg);base64,",
                                      "description": "data:image/png;base64,... or data:image/jpeg;base64,..."}}},
            {"type": "object", "title": "Pixels", "required": ["pixels"], "additionalProperties": False,
             "properties": {"pixels": _PIXELS_SCHEMA}},
        ]}},
    },
}
_FIELD_SCHEMA = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
_READING = {
    "type": "object",
    "required": ["model", "label", "probabilities", "confidence", "uncertain", "reasons", "blank", "input", "stages"],
    "properties": {
        "model": {"type": "string", "description": "the model id that read it"},
        "architecture": {"type": "string", "description": "e.g. DeepConvNet, 123,552 parameters"},
        "label": {"type": ["integer", "null"], "minimum": 0, "description": "null when there is nothing to read"},
        "probabilities": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "uncertain": {"type": "boolean", "description": "low confidence, or a picture unlike a handwritten digit"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "blank": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
        "input": {**_FIELD_SCHEMA, "description": "the 28x28 field the model saw (white digit on black)"},
        "stages": {"type": "object", "description": "PNG data URLs: crop, fitted (20x20), field (28x28)",
                   "properties": {k: {"type": ["string", "null"]} for k in ("crop", "fitted", "field")}},
        "activations": {"type": "array", "items": {"type": "object", "required": ["layer", "kind", "shape", "image"],
                                                    "properties": {"layer": {"type": "string"},
                                                                   "kind": {"enum": ["maps", "units"]},
                                                                   "shape": {"type": "array", "items": {"type": "integer"}},
                                                                   "image": {"type": "string"},
                                                                   "values": {"type": "array", "items": {"type": "number"}}}}},
        "saliency": {"oneOf": [_FIELD_SCHEMA, {"type": "null"}],
                     "description": "d score(label) / d pixel, by the model's own backward pass"},
        "filters": {"type": ["object", "null"]},
    },
}
_ERROR = {"description": "what is wrong with the request",
          "content": {"application/json": {"schema": {
              "type": "object", "required": ["detail"], "properties": {"detail": {}}}}}}
_ERRORS = {code: _ERROR for code in (400, 404, 408, 409, 413, 415, 422)}


def _static(name: str) -> bytes:
    return (resources.files("nnscratch.serve") / "static" / name).read_bytes()


def create_app(models=(), runs_dir="runs", digits_dir="digits", *, pretrained: bool = True,
               max_body_bytes: int = MAX_BODY_BYTES, body_timeout_s: float = BODY_TIMEOUT_S,
               max_large_pictures: int = MAX_LARGE_PICTURES):
    """The FastAPI application of the drawing page.

    Parameters
    ----------
    models : list of paths
        Model files to offer besides the pretrained DeepConvNet (``--model``).
    runs_dir : path
        Folder of training runs: every ``model.npz`` under it is offered, and
        runs started from the page are written there.
    digits_dir : path
        Folder the "It was a ..." buttons append the user's digits to (IDX files).
    pretrained : bool
        Offer the bundled DeepConvNet.
    max_body_bytes : int
        Larger request bodies are refused with 413.
    body_timeout_s : float
        A body not received in full within this many seconds is answered with 408.
    max_large_pictures : int
        Pictures of more than ``LARGE_PICTURE_PIXELS`` pixels decoded at once (the others wait):
        what bounds the server's memory when many large pictures arrive together.
    """
    require("fastapi", "serve", "the drawing page (nnscratch serve)")
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    catalog = ModelCatalog(models, runs_dir, pretrained=pretrained)
    folder = DigitFolder(digits_dir)
    job = TrainingJob(Path(runs_dir), catalog)
    static = {name: _static(name) for name in STATIC_FILES}
    default_id = PRETRAINED_ID if pretrained else None
    large_pictures = asyncio.Semaphore(max_large_pictures)

    app = FastAPI(
        title="nnscratch drawing page",
        version=__version__,
        description="Draw a digit and watch a from-scratch NumPy network read it, layer by layer.",
        docs_url=None, redoc_url=None,   # the interactive docs would load scripts from a CDN
    )
    app.state.catalog, app.state.digits, app.state.job = catalog, folder, job

    # ------------------------------------------------------------ errors
    def error(status: int, message: str):
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(BadInput)
    async def _bad_input(request, exc: BadInput):
        return error(exc.status, exc.message)

    @app.exception_handler(UnknownModelError)
    async def _unknown_model(request, exc):
        return error(404, str(exc))

    @app.exception_handler(NnscratchError)
    async def _nnscratch_error(request, exc):
        status = 422 if isinstance(exc, (ImageInputError, ModelFileError, ConfigError, ShapeError)) else 400
        message = str(exc)
        if isinstance(exc, ImageInputError):   # "<BytesIO>: cannot read ...": the client sent no file name
            message = answers.without_source(message)
        return error(status, message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc):
        parts = []
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {problem.get('msg')}" if where else str(problem.get("msg")))
        return error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {type(exc).__name__}")

    # ------------------------------------------------------------ helpers
    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise BadInput(400, f"invalid Content-Length {length!r}")
            if int(length) > max_body_bytes:
                raise BadInput(413, f"the body is {int(length):,} bytes; at most {max_body_bytes:,} are accepted")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(body_timeout_s):   # a client that stops sending is not waited for
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_body_bytes:
                        raise BadInput(413, f"the body is over {max_body_bytes:,} bytes, the most accepted")
                    chunks.append(chunk)
        except TimeoutError:
            raise BadInput(408, f"the body did not arrive within {body_timeout_s:g} s") from None
        except ClientDisconnect:   # the client went away mid-body (a page closed): nobody to answer, nothing to log
            raise BadInput(400, "the client disconnected before its body arrived") from None
        return b"".join(chunks)

    def check_model_id(model_id: str) -> str:
        if not _MODEL_ID.fullmatch(model_id):
            raise UnknownModelError(f"unknown model id {model_id[:MAX_MODEL_ID]!r}: ids are letters, digits, "
                                    "'.', '_' and '-' (GET /api/models lists them)")
        return model_id

    class _Large:   # a parsed body whose picture waits for a decoding slot
        def __init__(self, drawing, ready):
            self.drawing, self.ready = drawing, ready

    async def with_prepared(kind: str | None, body: bytes, use, before=lambda: None):
        """``use(before(), stages)`` for the body's drawing, in one trip to a worker thread (a
        hand-off costs most on a busy machine); a large picture goes back to wait for one of
        ``max_large_pictures`` decoding slots first."""
        def small():
            ready = before()
            drawing = parse_body(kind, body)
            if drawing.pixels > LARGE_PICTURE_PIXELS:
                return _Large(drawing, ready)
            return use(ready, answers.prepare(drawing))

        result = await run_in_threadpool(small)
        if isinstance(result, _Large):
            waiting = result
            async with large_pictures:
                result = await run_in_threadpool(lambda: use(waiting.ready, answers.prepare(waiting.drawing)))
        return result

    # ------------------------------------------------------------ the page
    def static_response(name: str):
        return Response(static[name], media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @app.get("/", include_in_schema=False)
    async def index():
        return static_response("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str):
        if name not in static:
            return error(404, f"no static file {name[:100]!r}")
        return static_response(name)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    # ------------------------------------------------------------ models
    @app.get("/api/models", summary="The models one can pick", responses=_ERRORS)
    async def list_models():
        """Every model the page offers: ``{"models": [{"id", "name", "source", ...}], "default": id}``.

        ``source`` is ``pretrained``, ``file`` (given with ``--model``) or ``run``
        (a ``model.npz`` under ``--runs``). Pass an ``id`` as ``?model=`` to
        ``POST /api/predict``.
        """
        listing = await run_in_threadpool(catalog.refresh)
        return {"models": listing, "default": default_id or (listing[0]["id"] if listing else None)}

    # ------------------------------------------------------------ predict
    @app.post("/api/predict", summary="Read a drawn digit", openapi_extra={"requestBody": _PICTURE_BODY},
              responses={**_ERRORS, 200: {"description": "the reading",
                                          "content": {"application/json": {"schema": _READING}}}})
    async def predict(request: Request,
                      model: str = Query(None, max_length=MAX_MODEL_ID, description="model id (GET /api/models)"),
                      details: bool = Query(False, description="also the layers' activations, the saliency "
                                                               "map and the first layer's filters")):
        """The reading of one drawing by one model.

        Answer: ``label`` (null when there is nothing to read), ``probabilities``
        (10 floats), ``confidence``, ``uncertain`` (a low-confidence or
        not-digit-like reading) with ``reasons``, ``blank``, ``input`` (the
        28x28 field the model saw) and ``stages`` (PNG data URLs of the
        preparation: the ink cropped, fitted into 20x20, centred in 28x28).
        With ``details=true`` also ``activations``, ``saliency`` (28x28:
        d score(label) / d pixel by the model's backward) and ``filters``.
        """
        model_id = check_model_id(model or default_id or "")
        kind = request.headers.get("content-type")
        body = await read_body(request)

        return await with_prepared(kind, body, lambda loaded, stages: answers.answer(loaded, stages, details=details),
                                   before=lambda: catalog.get(model_id))   # an unknown id: 404 whatever the body

    # ------------------------------------------------------------ the user's digits
    @app.get("/api/digits", summary="How many of your own digits are saved", responses=_ERRORS)
    async def digit_counts():
        """``{"counts": [10 ints], "total": int}`` of the folder of your own digits."""
        counts = await run_in_threadpool(folder.counts)
        return {"counts": counts, "total": sum(counts)}

    @app.post("/api/digits", summary="Save a drawing with its true label",
              openapi_extra={"requestBody": _PICTURE_BODY},
              responses={**_ERRORS, 500: {**_ERROR, "description": "the digits folder cannot be written "
                                                                   "(the server's disk): which folder and why"}})
    async def save_digit(request: Request, label: int = Query(..., ge=0, le=9, description="the true digit")):
        """Prepare the drawing as for reading and append it with ``label`` to the folder
        of your own digits (IDX files in MNIST's layout, for ``nnscratch evaluate --data``)."""
        kind = request.headers.get("content-type")
        body = await read_body(request)

        def save(_, stages):
            if stages.blank:
                raise BadInput(422, "the drawing is empty: draw a digit before saving it")
            try:
                total = folder.append(stages.field, label)
                counts = folder.counts()
            except OSError as exc:   # the server's disk, not the request: a 500 that says what failed
                reason = exc.strerror or type(exc).__name__
                where = f" ({exc.filename})" if exc.filename else ""
                raise BadInput(500, f"cannot save to the digits folder {folder.directory}: {reason}{where}") from None
            return {"saved": label, "total": total, "counts": counts}

        return await with_prepared(kind, body, save)

    # ------------------------------------------------------------ training
    @app.get("/api/train", summary="The training run started from the page", responses=_ERRORS)
    async def train_status():
        """State of the current or last run: ``{"state": "idle"|"running"|"stopping"|"done"|"failed", ...}``."""
        return job.status()

    @app.post("/api/train", summary="Start a small training run", status_code=202, responses=_ERRORS,
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": {
                  "type": "object", "properties": {
                      "model": {"type": "string", "enum": ["mlp", "two-layer", "simple-cnn"]},
                      "hidden": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 1024},
                                 "maxItems": 4},
                      "epochs": {"type": "integer", "minimum": 1, "maximum": 20},
                      "limit": {"type": "integer", "minimum": 100, "maximum": 60000},
                      "batch_size": {"type": "integer", "minimum": 10, "maximum": 1000},
                      "optimizer": {"type": "string"},
                      "lr": {"type": "number"}}}}}}})
    async def train_start(request: Request):
        """Start a run through ``nnscratch.runs`` (what ``nnscratch train`` does); 409 while one runs.
        Follow it on ``GET /api/train/events``; the finished model appears in ``GET /api/models``."""
        body = await read_body(request)
        settings = {}
        if body.strip():
            settings = parse_json(body)
            if not isinstance(settings, dict):
                raise BadInput(422, "the JSON body must be an object of run settings")
        return await run_in_threadpool(job.start, settings)

    @app.post("/api/train/stop", summary="Stop the running training run", responses=_ERRORS)
    async def train_stop():
        """Ask the run to stop at the end of its current batch. It keeps its checkpoint, which
        ``nnscratch train --resume`` continues; only a finished run writes ``model.npz`` and joins the picker."""
        return job.stop()

    @app.get("/api/train/events", summary="Training progress as server-sent events",
             response_class=StreamingResponse,
             responses={**_ERRORS, 200: {"description": "the run's events, then `end`",
                                         "content": {"text/event-stream": {"schema": {
                                             "type": "object", "required": ["event", "data"],
                                             "properties": {"event": {"enum": ["begin", "batch", "epoch", "done",
                                                                                "failed", "end"]},
                                                            "data": {"type": "string",
                                                                     "contentMediaType": "application/json"},
                                                            "id": {"type": "string"}}}}}}})
    async def train_events(request: Request,
                           after: int = Query(0, ge=0, le=10**9, description="skip events up to this number")):
        """``text/event-stream``: one ``data: {...}`` JSON event per batch report and epoch,
        then ``end``. Closes when the run is over. A browser reconnecting after a dropped
        connection sends ``Last-Event-ID`` and gets only the events it has not seen."""
        seen = request.headers.get("last-event-id", "").strip()
        start = max(after, int(seen)) if seen.isdigit() and len(seen) <= 10 else after

        async def stream():
            cursor = start
            idle = 0
            while True:
                events, finished = job.events_after(cursor)
                for number, event in events:
                    cursor = number
                    yield f"id: {number}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
                if finished:
                    yield f"event: end\ndata: {json.dumps(job.status())}\n\n"
                    return
                idle = 0 if events else idle + 1
                if idle and idle % 50 == 0:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app
