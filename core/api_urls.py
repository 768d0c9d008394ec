"""Routes of the bottom layer's API, included under ``/api/v1/``."""

from django.urls import path

from .feeds import cap_feed_view

urlpatterns = [path("cap/feed/", cap_feed_view, name="cap-feed")]
