"""Mosquitto's password files (PBKDF2-SHA512, ``$7$`` format) and ACL, from the database.

Each sensor logs in to the broker with its ref as username; admins set its password in
the admin, which stores only the hash. The ACL lets a device publish only under
``csu/<its ref>/``; the ingest user reads everything under ``csu/``. The devices'
listeners read ``passwords`` (devices and service accounts); the services' listener,
where client ids are kept, reads ``services``: the ingest account only, so no one else
can connect there with an ingest worker's client id (deploy/mosquitto/mosquitto.conf).
"""

import base64
import hashlib
import secrets

from django.conf import settings

from core.tokens import same_secret

from .models import RESERVED_REF_PREFIX

ITERATIONS = 1000
INGEST_USER = "csu-ingest"
SIMULATOR_USER = "csu-simulator"


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """Hash like ``mosquitto_passwd``: $7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        _, version, iterations, salt, digest = encoded.split("$")
    except ValueError:
        return False
    if version != "7":
        return False
    expected = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations), 64
    )
    return same_secret(digest, base64.b64encode(expected).decode())


def service_users() -> dict[str, str]:
    """The CSU's own MQTT users whose passwords come from the environment."""
    users = {}
    for user, password in (
        (INGEST_USER, settings.MQTT_INGEST_PASSWORD),
        (SIMULATOR_USER, settings.MQTT_SIMULATOR_PASSWORD),
    ):
        if password:
            users[user] = hash_password(password)
    return users


def password_file(device_hashes: dict[str, str], service_hashes: dict[str, str]) -> str:
    """The devices' listeners' file. A device whose ref has the services' prefix is left
    out: its client id there, its ref, could be an ingest worker's."""
    lines = [f"{user}:{encoded}" for user, encoded in sorted(service_hashes.items())]
    lines += [
        f"{ref}:{encoded}"
        for ref, encoded in sorted(device_hashes.items())
        if not ref.startswith(RESERVED_REF_PREFIX)
    ]
    return "\n".join(lines) + "\n"


def services_password_file(service_hashes: dict[str, str]) -> str:
    """The services' listener's file: the ingest account alone keeps its client ids."""
    lines = [f"{user}:{encoded}" for user, encoded in service_hashes.items() if user == INGEST_USER]
    return "".join(f"{line}\n" for line in lines)


ACL = f"""\
# Written by `manage.py mosquitto_auth`; do not edit by hand.
# The ingest worker reads every sensor's readings and status (also through $share/...).
user {INGEST_USER}
topic read csu/+/readings
topic read csu/+/status

# The demo simulator publishes for every sensor of the town, like a gateway.
user {SIMULATOR_USER}
topic write csu/+/readings
topic write csu/+/status

# Every device (username = its sensor ref) publishes only under its own topics.
pattern write csu/%u/readings
pattern write csu/%u/status
"""
