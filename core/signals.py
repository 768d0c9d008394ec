"""The signals of the bottom layer (connected in csu/apps.py).

- ``delivery_changed(abouts=[...])``: device pushes or text messages changed state (taken
  by their push service or gateway, received by the device, delivered, failed);
  ``abouts`` is what they were about (``DevicePush.about``, ``SmsMessage.about``, each
  once), so that whoever follows who was told how hears it at once.
"""

from django.dispatch import Signal

delivery_changed = Signal()
