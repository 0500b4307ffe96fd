"""The web app of ``hierarchy serve`` (see app.py): one photo, the review of a labels file, corrections."""

from hierarchy.serve.app import build_app

__all__ = ["build_app"]
