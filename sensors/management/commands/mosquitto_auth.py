import os
from pathlib import Path

from django.core.management.base import BaseCommand

from sensors import mqtt_auth
from sensors.models import Sensor


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    # Hashes only, but no need to show them to other users of the host; the broker's
    # user must read them, hence group and, in containers, others.
    os.chmod(tmp, 0o644)
    tmp.replace(path)


class Command(BaseCommand):
    help = (
        "Write Mosquitto's password files (passwords: the devices' listeners; services: "
        "the services' listener, ingest only) and ACL from the sensors' MQTT passwords "
        "(set in the admin) and the service users' passwords (MQTT_INGEST_PASSWORD, "
        "MQTT_SIMULATOR_PASSWORD). Send SIGHUP to Mosquitto afterwards to reload them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", default=".", help="directory for 'passwords' and 'acl'")

    def handle(self, *args, **options):
        out = Path(options["output"])
        out.mkdir(parents=True, exist_ok=True)
        devices = dict(
            Sensor.objects.filter(active=True)
            .exclude(mqtt_password_hash="")
            .values_list("ref", "mqtt_password_hash")
        )
        services = mqtt_auth.service_users()
        write_atomically(out / "passwords", mqtt_auth.password_file(devices, services))
        write_atomically(out / "services", mqtt_auth.services_password_file(services))
        write_atomically(out / "acl", mqtt_auth.ACL)
        without = Sensor.objects.filter(active=True, mqtt_password_hash="").count()
        self.stdout.write(
            f"wrote {out / 'passwords'} ({len(devices)} device(s), service users: "
            f"{', '.join(sorted(services)) or 'none'}), {out / 'services'} and {out / 'acl'}"
        )
        if without:
            self.stdout.write(f"{without} active sensor(s) have no MQTT password yet")
