from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom layer every app may use; it imports none of them."""

    name = "core"
    verbose_name = "CSU"
