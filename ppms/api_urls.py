"""Routes of the PPMS API, included under ``/api/v1/`` after the alerts' routes."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

# SimpleRouter, not DefaultRouter: no root view, so the prefix stays shared.
router = SimpleRouter()
router.register("schools", api.SchoolViewSet, basename="school")
router.register("shelters", api.ShelterViewSet, basename="shelter")
router.register("ppms/activations", api.ActivationViewSet, basename="ppms-activation")
router.register("ppms/proposals", api.ProposalViewSet, basename="ppms-proposal")
router.register("ppms/drills", api.DrillViewSet, basename="ppms-drill")

urlpatterns = [
    *router.urls,
    path(
        "ppms/activations/<int:pk>/cap/",
        api.activation_cap_view,
        name="ppms-activation-cap",
    ),
    path(
        "ppms/activations/<int:pk>/cap/public/",
        api.activation_public_cap_view,
        name="ppms-activation-cap-public",
    ),
]
