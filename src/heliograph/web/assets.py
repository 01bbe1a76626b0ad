"""The dashboard's static files: our own CSS and JavaScript, and plotly.js as the `plotly` wheel
ships it. Each is read once, gzipped once, and served with a content hash in its URL so browsers
keep it for a year."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
YEAR = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str


def plotly_path() -> Path:
    """plotly.js inside the installed `plotly` package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _load(path: Path) -> Asset:
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body, gzip.compress(body, 6, mtime=0), digest, TYPES[path.suffix])


class Assets:
    """Files by URL name, loaded on first use."""

    def __init__(self) -> None:
        self._paths = {path.name: path for path in STATIC_DIR.iterdir() if path.suffix in TYPES}
        self._paths["plotly.min.js"] = plotly_path()
        self._loaded: dict[str, Asset] = {}

    def get(self, name: str) -> Asset | None:
        if name not in self._loaded:
            path = self._paths.get(name)  # an allow-list: never a path built from the URL
            if path is None:
                return None
            self._loaded[name] = _load(path)
        return self._loaded[name]

    def url(self, name: str) -> str:
        asset = self.get(name)
        if asset is None:
            raise KeyError(f"no static file {name!r}")
        return f"/static/{name}?v={asset.etag}"

    def response(self, request: Request, name: str) -> Response:
        asset = self.get(name)
        if asset is None:
            return Response("not found", 404, media_type="text/plain")
        headers = {"ETag": f'"{asset.etag}"', "Cache-Control": YEAR, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == f'"{asset.etag}"':
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
