"""The map's base map: is the tile server of CSU_MAP_TILES answering?

The dashboard draws its map with Leaflet over the tiles of CSU_MAP_TILES when the tile
server answers, and otherwise the plan drawn from the coordinates (the SVG of
``templates/dashboard/_map.html``): an operations room without internet, or a tile server
down, still has its map. The server asks for one tile before it offers the tiles to the
browsers, so that a browser never piles up failed tile requests; the answer is kept a
while, and a tile server that stops (or starts again) answering is logged once, at the
change. The browser falls back as well if its own tile requests fail (static/js/map.js).
"""

import logging
import math
import threading
import time
import urllib.request

from django.conf import settings

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 1.5
KEEP_ANSWER_S = {True: 600.0, False: 60.0}  # a tile server that failed is asked sooner
PROBE_ZOOM = 12

_answers: dict[str, tuple[bool, float]] = {}  # tile URL -> (answered, when)
_lock = threading.Lock()


def tile_url(template: str, zoom: int, lon: float, lat: float) -> str:
    """The URL of the tile at ``zoom`` holding the point (Web Mercator, as Leaflet)."""
    n = 2**zoom
    x = min(int((lon + 180) / 360 * n), n - 1)
    lat_r = math.radians(max(min(lat, 85.0), -85.0))
    y = min(int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n), n - 1)
    return template.replace("{z}", str(zoom)).replace("{x}", str(x)).replace("{y}", str(y))


def answers(template: str, lon: float, lat: float) -> bool:
    """Whether the tile server of ``template`` serves the tile around (lon, lat)."""
    now = time.monotonic()
    with _lock:
        known = _answers.get(template)
    if known and now - known[1] < KEEP_ANSWER_S[known[0]]:
        return known[0]
    url = tile_url(template, PROBE_ZOOM, lon, lat)
    request = urllib.request.Request(url, headers={"User-Agent": "CSU (map tiles check)"})
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            answered = 200 <= response.status < 300
            why = f"HTTP {response.status}"
    except Exception as error:  # noqa: BLE001 (any failure means: no tiles)
        answered, why = False, str(error)
    with _lock:
        before = _answers.get(template)
        _answers[template] = (answered, time.monotonic())
    if not answered and (before is None or before[0]):
        log.warning("map tiles: %s does not answer (%s): the map drawn instead", url, why)
    elif answered and before is not None and not before[0]:
        log.info("map tiles: %s answers again", url)
    return answered


def base_map(lon: float, lat: float) -> dict | None:
    """What Leaflet needs for the base map, or None: the map drawn from the coordinates."""
    template = settings.CSU_MAP_TILES
    if not template or not answers(template, lon, lat):
        return None
    return {"url": template, "attribution": settings.CSU_MAP_ATTRIBUTION}
