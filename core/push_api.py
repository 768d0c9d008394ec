"""The API of Web Push subscriptions: a signed-in user's device subscribes to the CSU's
notifications (the director's page on a phone), or unsubscribes.

Only the push services of the browsers are accepted as addresses (``WEBPUSH_HOSTS``): the
CSU posts to whatever address a subscription names, so an address of the town's own
network must not be one.
"""

import base64
import binascii
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import webpush
from .models import DevicePush, PushSubscription
from .openapi import BAD_INPUT_RESPONSE, NOT_FOUND_RESPONSE
from .signals import delivery_changed
from .tokens import same_secret


def _decoded(value: str, length: int, field: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length:
        raise serializers.ValidationError(
            _("%(field)s : %(length)d octets en base64url attendus.")
            % {"field": field, "length": length}
        )
    return value


def push_host_allowed(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    allowed = any(host == known or host.endswith("." + known) for known in settings.WEBPUSH_HOSTS)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    return allowed and (parts.scheme == "https" or loopback)


class KeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200)
    auth = serializers.CharField(max_length=100)

    def validate_p256dh(self, value):
        return _decoded(value, 65, "p256dh")

    def validate_auth(self, value):
        return _decoded(value, 16, "auth")


class SubscriptionSerializer(serializers.Serializer):
    """A PushSubscription as the browser's Push API gives it (``subscription.toJSON()``)."""

    endpoint = serializers.URLField(max_length=1000)
    keys = KeysSerializer()

    def validate_endpoint(self, value):
        if not push_host_allowed(value):
            raise serializers.ValidationError(
                _("Adresse refusée : seule celle d'un service de notifications des navigateurs.")
            )
        return value


class EndpointSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)


PUSH_SETTINGS = inline_serializer(
    "PushSettings",
    {
        "enabled": serializers.BooleanField(),
        "public_key": serializers.CharField(help_text=_("La clé VAPID (applicationServerKey).")),
    },
)


class PushView(APIView):
    @extend_schema(
        summary=_("Les notifications poussées : activées, et la clé publique VAPID"),
        responses={200: PUSH_SETTINGS},
        tags=["push"],
    )
    def get(self, request):
        return Response(
            {"enabled": webpush.enabled(), "public_key": settings.WEBPUSH_VAPID_PUBLIC_KEY}
        )


class SubscriptionsView(APIView):
    @extend_schema(
        summary=_("Abonner cet appareil aux notifications poussées"),
        request=SubscriptionSerializer,
        responses={201: None, 400: BAD_INPUT_RESPONSE},
        tags=["push"],
    )
    def post(self, request):
        serializer = SubscriptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        PushSubscription.objects.update_or_create(
            endpoint=data["endpoint"],
            defaults={
                "user": request.user,
                "p256dh": data["keys"]["p256dh"],
                "auth": data["keys"]["auth"],
                "user_agent": request.headers.get("User-Agent", "")[:300],
            },
        )
        return Response(status=status.HTTP_201_CREATED)


class UnsubscribeView(APIView):
    @extend_schema(
        summary=_("Désabonner cet appareil"),
        request=EndpointSerializer,
        responses={204: None, 400: BAD_INPUT_RESPONSE},
        tags=["push"],
    )
    def post(self, request):
        serializer = EndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        PushSubscription.objects.filter(
            user=request.user, endpoint=serializer.validated_data["endpoint"]
        ).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PushReceiptSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)
    token = serializers.CharField(max_length=64)


class ReceivedView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary=_("Accusé de réception d'une notification poussée (le service worker)"),
        request=PushReceiptSerializer,
        responses={204: None, 400: BAD_INPUT_RESPONSE, 404: NOT_FOUND_RESPONSE},
        tags=["push"],
    )
    def post(self, request):
        serializer = PushReceiptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        push = DevicePush.objects.filter(pk=data["id"]).first()
        if push is None or not same_secret(data["token"], push.token):
            raise NotFound(_("Aucune notification ne correspond."))
        if push.received_at is None:
            push.received_at = timezone.now()
            push.save(update_fields=["received_at"])
            delivery_changed.send(sender=DevicePush, abouts=[push.about])
        return Response(status=status.HTTP_204_NO_CONTENT)
