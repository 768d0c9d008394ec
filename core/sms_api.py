"""The SMS gateway's delivery receipts (core/texting.py): authenticated by the gateway's own
bearer token (``SMS_GATEWAY_TOKEN``), not a user's session."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import texting
from .openapi import BAD_INPUT_RESPONSE, FORBIDDEN_RESPONSE, NOT_FOUND_RESPONSE
from .tokens import same_secret


class SmsReceiptSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=["delivered", "failed"])
    error = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs["reference"] and not attrs["id"]:
            raise serializers.ValidationError({"reference": _("reference ou id, au moins.")})
        return attrs


class ReceiptView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary=_("Accusé de réception d'un SMS (la passerelle SMS)"),
        request=SmsReceiptSerializer,
        responses={
            204: None,
            400: BAD_INPUT_RESPONSE,
            403: FORBIDDEN_RESPONSE,
            404: NOT_FOUND_RESPONSE,
        },
        tags=["sms"],
    )
    def post(self, request):
        token = settings.SMS_GATEWAY_TOKEN
        given = request.headers.get("Authorization", "")
        if not token or not same_secret(given, f"Bearer {token}"):
            raise PermissionDenied(_("Jeton de la passerelle SMS absent ou faux."))
        serializer = SmsReceiptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not texting.receipt(
            reference=data["reference"],
            gateway_id=data["id"],
            status=data["status"],
            error=data["error"],
        ):
            raise NotFound(_("Aucun SMS envoyé ne correspond."))
        return Response(status=status.HTTP_204_NO_CONTENT)
