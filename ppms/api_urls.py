"""Routes of the PPMS API, included under ``/api/v1/`` after the alerts' routes."""

from rest_framework.routers import SimpleRouter

from . import api

# SimpleRouter, not DefaultRouter: no root view, so the prefix stays shared.
router = SimpleRouter()
router.register("schools", api.SchoolViewSet, basename="school")
router.register("shelters", api.ShelterViewSet, basename="shelter")

urlpatterns = router.urls
