"""Serve plotly.js from the plotly Python package: no CDN, no copy in the repository."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PATH = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Find ``vendor/plotly.min.js`` (the plotly.js bundled with the installed plotly)."""

    storage = FileSystemStorage(location=str(PLOTLY_JS.parent))

    def check(self, **kwargs):
        if not PLOTLY_JS.exists():
            return [Error(f"plotly.js not found at {PLOTLY_JS}", id="csu.E001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        if path == PATH:
            return [str(PLOTLY_JS)] if find_all else str(PLOTLY_JS)
        return []

    def list(self, ignore_patterns):
        # collectstatic copies the one file, under its public path.
        yield PLOTLY_JS.name, PrefixedStorage(self.storage)


class PrefixedStorage(FileSystemStorage):
    def __init__(self, inner):
        super().__init__(location=inner.location)
        self.prefix = "vendor"
