"""The drawing page: ``nnscratch serve`` -- draw a digit in the browser and watch a network read it.

``create_app`` (in :mod:`nnscratch.serve.app`) builds the FastAPI application;
FastAPI and uvicorn are the ``serve`` extra (``pip install 'nnscratch[serve]'``)
and are imported only when the page is served.
"""

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """Build the drawing page's FastAPI app (see :func:`nnscratch.serve.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)
