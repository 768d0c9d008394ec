"""The CAP Atom feed: an index of the CAP messages under way, and the views of CAP documents.

The feed is an index of current CAP messages, the usual shape of CAP feeds: each entry
is one message, its id the message's identifier, its link the CAP document (typed
``application/cap+xml``) and its content the CAP alert itself, so readers that parse
CAP from the feed (as they do from public CAP feeds) need no second request. A subject
that changes gets a new identifier, so readers see a new entry and the superseded one
drops out. An ended subject keeps its last message (AllClear, or Cancel for a PPMS
activation sent in error) for ``CAP_FEED_KEEP_HOURS`` before it leaves, so a reader that
polls hears of the end.

The apps add their entries without this module knowing them: the wiring
(``csu/apps.py``) registers each app's provider, ``(user) -> list[FeedItem]``: the open
and recently resolved alerts (``alerts/feeds.py``), the PPMS activations
(``ppms/cap.py``).

Each answer carries an ``ETag`` (a digest of the body, which differs with who asks) and
a ``Last-Modified`` (the latest message); ``If-None-Match`` with the current ETag gets a
304. ``If-Modified-Since`` alone is not answered with a 304: an item leaving the feed
changes it without a newer message, so only the ETag tells that for sure.
"""

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils import translation
from django.utils.http import http_date, parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .cap import CAP_MEDIA_TYPE, cap_datetime

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml"
FEED_LIMIT = 200  # per provider
FEED_TITLE = "CSU — alertes et PPMS en cours"
FEED_SUBTITLE = "Messages CAP 1.2 en cours du centre de supervision urbaine."
# The ``updated`` of a feed without entries: a fixed date, so its ETag stays the same.
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedItem:
    """One entry of the feed: one current CAP message."""

    id: str  # the CAP message's identifier
    title: str
    link: str  # the address of the CAP document
    updated: datetime  # the message's ``sent``
    summary: str = ""
    content: bytes = b""  # the CAP document itself, embedded in the entry


FeedProvider = Callable[..., list[FeedItem]]  # (user) -> the items that user may see
FEED_PROVIDERS: list[FeedProvider] = []


def register_feed_provider(provider: FeedProvider) -> FeedProvider:
    """Add ``provider``'s items to the feed (once); usable as a decorator."""
    if provider not in FEED_PROVIDERS:
        FEED_PROVIDERS.append(provider)
    return provider


def public_url(path: str) -> str:
    """The public address of a path of the CSU (links must work outside it)."""
    return f"{settings.CSU_PUBLIC_URL.rstrip('/')}/{path}"


def api_url(path: str) -> str:
    """The public address of an API path."""
    return public_url(f"api/v1/{path}")


def feed_items(user) -> list[FeedItem]:
    """Everything the providers give ``user``, newest first."""
    with translation.override("fr"):
        items = [item for provider in FEED_PROVIDERS for item in provider(user)]
    items.sort(key=lambda item: (item.updated, item.id), reverse=True)
    return items


def feed_updated(items: list[FeedItem]) -> datetime:
    """The feed's ``updated``: its latest message."""
    return max((item.updated for item in items), default=EMPTY_FEED_UPDATED)


def atom_feed(items: list[FeedItem]) -> bytes:
    """Write ``items`` as an Atom feed, each entry embedding its CAP alert."""
    # Atom as the default namespace, declared by hand (its elements then go unqualified):
    # ElementTree's ``default_namespace`` refuses unqualified attributes, which Atom's are.
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "fr"})
    _text(feed, "title", FEED_TITLE)
    _text(feed, "subtitle", FEED_SUBTITLE)
    ET.SubElement(feed, "link", rel="alternate", href=public_url(""))
    ET.SubElement(feed, "link", rel="self", href=api_url("cap/feed/"))
    _text(feed, "id", api_url("cap/feed/"))
    _text(feed, "updated", cap_datetime(feed_updated(items)))
    author = ET.SubElement(feed, "author")
    _text(author, "name", "Centre de supervision urbaine")
    for item in items:
        entry = ET.SubElement(feed, "entry")
        _text(entry, "title", item.title)
        ET.SubElement(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=item.link)
        _text(entry, "id", item.id)
        # Written like the CAP message's own ``sent``.
        _text(entry, "updated", cap_datetime(item.updated))
        if item.summary:
            _text(entry, "summary", item.summary)
        if item.content:
            content = ET.SubElement(entry, "content", type="text/xml")
            content.append(ET.fromstring(item.content))
    return ET.tostring(feed, encoding="UTF-8", xml_declaration=True)


def _text(parent: ET.Element, name: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, name)
    element.text = text
    return element


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


# --- Views -------------------------------------------------------------------------------


class XMLDocumentRenderer(BaseRenderer):
    """Pass a finished XML document through."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class CapRenderer(XMLDocumentRenderer):
    media_type = CAP_MEDIA_TYPE
    format = "cap"


class AtomRenderer(XMLDocumentRenderer):
    media_type = ATOM_MEDIA_TYPE
    format = "atom"


class OneFormat(BaseContentNegotiation):
    """Answer in the view's one format whatever Accept says (readers may ask for XML)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class XMLDocumentView(APIView):
    """Session or token authentication, like the rest of the API; errors in JSON."""

    permission_classes = [IsAuthenticated]
    content_negotiation_class = OneFormat

    def handle_exception(self, exc):
        # A 401 or 404 is not a CAP or Atom document: answer it like the rest of the API.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


class CapFeedView(XMLDocumentView):
    renderer_classes = [AtomRenderer]

    @extend_schema(
        summary="Atom feed of the current CAP messages (open alerts, PPMS activations)",
        description=(
            "One entry per current CAP message the user may see: its id is the message's "
            "identifier, its link the CAP document, its content the CAP alert. Ended alerts "
            "and activations stay CAP_FEED_KEEP_HOURS with their last message. ETag and "
            "If-None-Match: 304 when unchanged."
        ),
        responses={(200, ATOM_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR)},
        tags=["alerts"],
    )
    def get(self, request):
        items = feed_items(request.user)
        body = atom_feed(items)
        tag = etag(body)
        headers = {
            "ETag": tag,
            "Last-Modified": http_date(feed_updated(items).timestamp()),
            # Per user: shared caches must not hand one reader's feed to another.
            "Cache-Control": "private, no-cache",
            "Vary": "Authorization, Cookie",
        }
        wanted = parse_etags(request.headers.get("If-None-Match", ""))
        if tag in wanted or "*" in wanted:
            return Response(status=304, headers=headers)
        return Response(body, headers=headers)


cap_feed_view = CapFeedView.as_view()
