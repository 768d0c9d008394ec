"""Routes of the sensors API, included under ``/api/v1/`` next to the other apps' routes."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

# SimpleRouter, not DefaultRouter: no root view, so the prefix stays shared.
router = SimpleRouter()
router.register("sensors", api.SensorViewSet, basename="sensor")

urlpatterns = [
    *router.urls,
    path("latest/", api.LatestView.as_view(), name="latest"),
    path("rejections/", api.RejectionListView.as_view(), name="rejection-list"),
]
