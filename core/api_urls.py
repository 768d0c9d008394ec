"""Routes of the bottom layer's API, included under ``/api/v1/``."""

from django.urls import path

from .feeds import cap_feed_view
from .push_api import PushView, ReceivedView, SubscriptionsView, UnsubscribeView
from .sms_api import ReceiptView

urlpatterns = [
    path("cap/feed/", cap_feed_view, name="cap-feed"),
    path("push/", PushView.as_view(), name="push"),
    path("push/subscriptions/", SubscriptionsView.as_view(), name="push-subscriptions"),
    path("push/unsubscribe/", UnsubscribeView.as_view(), name="push-unsubscribe"),
    path("push/received/", ReceivedView.as_view(), name="push-received"),
    path("sms/receipts/", ReceiptView.as_view(), name="sms-receipts"),
]
