"""The CAP Atom feed: an index of the CAP messages under way, and the views of CAP documents.

The feed is an index of current CAP messages, the usual shape of CAP feeds: each entry
is one message, its id the message's identifier, its link the CAP document. A subject
that changes gets a new identifier, so readers see a new entry and the superseded one
drops out.

The apps add their entries without this module knowing them: the wiring
(``csu/apps.py``) registers each app's provider, ``(user) -> list[FeedItem]``: the open
alerts (``alerts/feeds.py``), the PPMS activations (``ppms/cap.py``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone, translation
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .cap import CAP_MEDIA_TYPE

ATOM_MEDIA_TYPE = "application/atom+xml"
FEED_LIMIT = 200  # per provider
FEED_SUBTITLE = "Messages CAP 1.2 en cours du centre de supervision urbaine."


@dataclass(frozen=True)
class FeedItem:
    """One entry of the feed: one current CAP message."""

    id: str  # the CAP message's identifier
    title: str
    link: str  # the address of the CAP document
    updated: datetime  # the message's ``sent``
    summary: str = ""


FeedProvider = Callable[..., list[FeedItem]]  # (user) -> the items that user may see
FEED_PROVIDERS: list[FeedProvider] = []


def register_feed_provider(provider: FeedProvider) -> FeedProvider:
    """Add ``provider``'s items to the feed (once); usable as a decorator."""
    if provider not in FEED_PROVIDERS:
        FEED_PROVIDERS.append(provider)
    return provider


def api_url(path: str) -> str:
    """The public address of an API path (links must work outside the CSU)."""
    return f"{settings.CSU_PUBLIC_URL.rstrip('/')}/api/v1/{path}"


def atom_feed(user) -> bytes:
    """Build the Atom feed of everything the providers give ``user``, newest first."""
    with translation.override("fr"):
        items = [item for provider in FEED_PROVIDERS for item in provider(user)]
    items.sort(key=lambda item: item.updated, reverse=True)
    feed = Atom1Feed(
        title="CSU — alertes et PPMS en cours",
        link=f"{settings.CSU_PUBLIC_URL.rstrip('/')}/",
        description=FEED_SUBTITLE,
        subtitle=FEED_SUBTITLE,  # what Atom1Feed writes; ``description`` is for RSS
        feed_url=api_url("cap/feed/"),
        feed_guid=api_url("cap/feed/"),
        language="fr",
        author_name="Centre de supervision urbaine",
    )
    for item in items:
        feed.add_item(
            title=item.title,
            link=item.link,
            description=escape(item.summary),  # Atom1Feed declares the summary HTML
            unique_id=item.id,
            # Written like the CAP message's own ``sent``.
            updateddate=timezone.localtime(item.updated).replace(microsecond=0),
        )
    return feed.writeString("utf-8").encode("utf-8")


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
            "identifier, its link the CAP document."
        ),
        responses={(200, ATOM_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR)},
        tags=["alerts"],
    )
    def get(self, request):
        return Response(atom_feed(request.user))


cap_feed_view = CapFeedView.as_view()
