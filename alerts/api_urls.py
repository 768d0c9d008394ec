"""Routes of the alerts API, included under ``/api/v1/`` after the sensors' routes."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api
from .feeds import alert_cap_view

# SimpleRouter, not DefaultRouter: no root view, so the prefix stays shared.
router = SimpleRouter()
router.register("alerts", api.AlertViewSet, basename="alert")
router.register("incidents", api.IncidentViewSet, basename="incident")
router.register("silences", api.SilenceViewSet, basename="silence")
router.register("rules", api.RuleViewSet, basename="rule")

urlpatterns = [
    *router.urls,
    path("alerts/<int:pk>/cap/", alert_cap_view, name="alert-cap"),
]
