"""``/api/schema/`` and ``/api/docs/``: drf-spectacular's views, their refusals in JSON.

Apart from core.openapi, which the API settings name: drf-spectacular's views read those
settings when imported.
"""

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer


class RefusalsInJson:
    """A refusal (a bad token: 401, a POST: 405) in JSON like every other API answer,
    not in the schema's YAML nor as the docs' page."""

    def handle_exception(self, exc):
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


class SchemaView(RefusalsInJson, SpectacularAPIView):
    pass


class DocsView(RefusalsInJson, SpectacularSwaggerSplitView):
    pass
