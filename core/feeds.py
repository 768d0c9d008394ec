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
(``csu/apps.py``) registers each app's provider, ``(user) -> FeedPart``: the open and
recently resolved alerts (``alerts/feeds.py``), the PPMS activations (``ppms/cap.py``).
A part also says when the latest of its items left the feed, since that changes the
feed without a newer message.

The feed's ``updated`` and its ``Last-Modified`` are its latest change: the latest
message or the latest departure. Each answer carries an ``ETag`` (a digest of the body,
which differs with who asks); ``If-None-Match`` with the current ETag, or else
``If-Modified-Since`` no earlier than ``Last-Modified``, gets a 304 (Django's
``get_conditional_response``, RFC 9110 §13.2.2). HTTP dates have no fraction of a
second: while the latest change is younger than ``LAST_MODIFIED_SETTLE``, another could
still come within the same second, so the answer carries no ``Last-Modified`` and the
ETag alone validates it. A reader whose rights change sees it through the ETag; with
``If-Modified-Since`` alone, at the feed's next change.
"""

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .cap import CAP_MEDIA_TYPE, cap_datetime, feed_keep

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml"
FEED_LIMIT = 200  # per provider
FEED_TITLE = "CSU — alertes et PPMS en cours"
FEED_SUBTITLE = "Messages CAP 1.2 en cours du centre de supervision urbaine."
# The ``updated`` of a feed without entries: a fixed date, so its ETag stays the same.
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)
# How old the feed's latest change must be before it is given as ``Last-Modified``:
# messages are stamped before their transaction commits, and HTTP dates drop the
# fraction of a second.
LAST_MODIFIED_SETTLE = timedelta(seconds=5)


@dataclass(frozen=True)
class FeedItem:
    """One entry of the feed: one current CAP message."""

    id: str  # the CAP message's identifier
    title: str
    link: str  # the address of the CAP document
    updated: datetime  # the message's ``sent``
    summary: str = ""
    content: bytes = b""  # the CAP document itself, embedded in the entry


@dataclass(frozen=True)
class FeedPart:
    """What one provider gives a user: the current items, and when the latest of the
    items that user could see left the feed (None if none has)."""

    items: list[FeedItem]
    left_at: datetime | None = None


@dataclass(frozen=True)
class Feed:
    items: list[FeedItem]  # newest first
    updated: datetime  # its latest change: a message, or an item leaving it


FeedProvider = Callable[..., FeedPart]  # (user) -> what that user may see
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


def read_feed(user) -> Feed:
    """Everything the providers give ``user``, newest first, and its latest change."""
    with translation.override("fr"):
        parts = [provider(user) for provider in FEED_PROVIDERS]
    items = sorted(
        (item for part in parts for item in part.items),
        key=lambda item: (item.updated, item.id),
        reverse=True,
    )
    changes = [item.updated for item in items]
    changes += [part.left_at for part in parts if part.left_at is not None]
    return Feed(items, max(changes, default=EMPTY_FEED_UPDATED))


def left_at(last_end: datetime | None) -> datetime | None:
    """When the last item to leave the feed left it, from the latest end (AllClear,
    Cancel) among the ended items already gone: ``last_end`` plus the keep."""
    return last_end + feed_keep() if last_end is not None else None


def atom_feed(feed: Feed) -> bytes:
    """Write ``feed`` as an Atom feed, each entry embedding its CAP alert."""
    # Atom as the default namespace, declared by hand (its elements then go unqualified):
    # ElementTree's ``default_namespace`` refuses unqualified attributes, which Atom's are.
    root = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "fr"})
    _text(root, "title", FEED_TITLE)
    _text(root, "subtitle", FEED_SUBTITLE)
    ET.SubElement(root, "link", rel="alternate", href=public_url(""))
    ET.SubElement(root, "link", rel="self", href=api_url("cap/feed/"))
    _text(root, "id", api_url("cap/feed/"))
    _text(root, "updated", cap_datetime(feed.updated))
    author = ET.SubElement(root, "author")
    _text(author, "name", "Centre de supervision urbaine")
    for item in feed.items:
        entry = ET.SubElement(root, "entry")
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
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


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
            "and activations stay CAP_FEED_KEEP_HOURS with their last message. "
            "If-None-Match (the ETag) or If-Modified-Since (the Last-Modified): 304 when "
            "unchanged. Last-Modified is left out while the latest change is under "
            "5 seconds old."
        ),
        responses={(200, ATOM_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR)},
        tags=["alerts"],
    )
    def get(self, request):
        feed = read_feed(request.user)
        body = atom_feed(feed)
        response = Response(
            body,
            headers={
                "ETag": etag(body),
                # Per user: shared caches must not hand one reader's feed to another.
                "Cache-Control": "private, no-cache",
                "Vary": "Authorization, Cookie",
            },
        )
        last_modified = None
        if feed.updated <= timezone.now() - LAST_MODIFIED_SETTLE:
            last_modified = int(feed.updated.timestamp())
            response["Last-Modified"] = http_date(last_modified)
        return get_conditional_response(
            request, etag=response["ETag"], last_modified=last_modified, response=response
        )


cap_feed_view = CapFeedView.as_view()
