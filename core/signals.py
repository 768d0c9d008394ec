"""The signals of the bottom layer (connected in csu/apps.py).

- ``delivery_changed(about=...)``: a device push or a text message changed state (taken
  by its push service or gateway, received by the device, delivered, failed); ``about``
  is what it was about (``DevicePush.about``, ``SmsMessage.about``), so that whoever
  follows who was told how hears it at once.
"""

from django.dispatch import Signal

delivery_changed = Signal()
