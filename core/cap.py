"""The building blocks of CAP 1.2 (OASIS Common Alerting Protocol) documents.

The alerts (``alerts/cap.py``) and the PPMS activations (``ppms/cap.py``) build their
messages from these, so both read alike: the namespace, the sender and identifiers'
host, times with their offset, headlines, areas as WGS 84 polygons or circles. The
schema ``schema/CAP-v1.2.xsd`` is OASIS's, vendored for the tests.
"""

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_SCHEMA = Path(__file__).parent / "schema" / "CAP-v1.2.xsd"
CAP_MEDIA_TYPE = "application/cap+xml"
HEADLINE_MAX = 160  # CAP: "SHOULD be less than 160 characters"
CIRCLE_RADIUS_KM = 0.1
# An ongoing subject has no known end: its message expires this long after its latest
# change, so a reader never drops a live alert early; the feed (``core/feeds.py``) is
# what tells a reader an item is still current.
ONGOING_EXPIRY = timedelta(days=7)
# Written ``cap:`` wherever a CAP alert sits inside another document (the Atom feed).
ET.register_namespace("cap", CAP_NS)


def cap_sender() -> str:
    return settings.CSU_CAP_SENDER or f"csu@{host()}"


def headline(title: str) -> str:
    if len(title) < HEADLINE_MAX:
        return title
    return title[: HEADLINE_MAX - 2] + "…"


def outer_rings(geometry) -> list[list[tuple[float, float]]]:
    """The closed outer rings, (lon, lat), of a GeoJSON Polygon or MultiPolygon.

    Holes are left out: a CAP polygon is one simple ring, and listing a hole as another
    polygon would add its area instead of removing it. Malformed rings are skipped.
    """
    if not isinstance(geometry, dict):
        return []
    coordinates = geometry.get("coordinates") or []
    polygons = {"Polygon": [coordinates], "MultiPolygon": coordinates}.get(geometry.get("type"), [])
    rings = []
    for polygon in polygons:
        try:
            ring = [(float(point[0]), float(point[1])) for point in polygon[0]]
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        if len(ring) >= 4:  # CAP: at least four pairs, the first and last the same
            rings.append(ring)
    return rings


def host() -> str:
    """The CSU's own host name: the first usable entry of ALLOWED_HOSTS."""
    for host in settings.ALLOWED_HOSTS:
        host = host.lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def cap_datetime(moment: datetime) -> str:
    """Format as CAP wants: local time with its offset, whole seconds, never "Z"."""
    return timezone.localtime(moment).replace(microsecond=0).isoformat()


def feed_keep() -> timedelta:
    """How long an ended subject's last message stays in the feed."""
    return timedelta(hours=settings.CAP_FEED_KEEP_HOURS)


def expires(sent: datetime, ended: datetime | None) -> str:
    """The ``expires`` of a message: when it leaves the feed once ended, else a week on."""
    return cap_datetime(ended + feed_keep() if ended else sent + ONGOING_EXPIRY)


def add_geocode(area: ET.Element, name: str, value: str) -> None:
    """Add a ``geocode`` (INSEE code of a commune, UAI of a school) to ``area``."""
    geocode = sub(area, "geocode")
    sub(geocode, "valueName", name)
    sub(geocode, "value", value)


PARIS = ZoneInfo("Europe/Paris")


def local(moment: datetime) -> str:
    """A moment for French readers: Paris time, said so."""
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M (heure de Paris)")


def number(value: float) -> str:
    """A value for machines: exact, without a trailing ".0"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def deg(value: float) -> str:
    """WGS 84 decimal degrees, to the micro-degree (about 10 cm)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def tag(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag(name))
    if text is not None:
        element.text = text
    return element
