import logging
import os
import signal

from django.core.management.base import BaseCommand

from sensors.ingest.mqtt import default_client_id
from sensors.ingest.worker import IngestWorker


class Command(BaseCommand):
    help = (
        "Run the MQTT ingest worker: subscribe to csu/+/readings and csu/+/status (QoS 1, "
        "persistent session), write batches, acknowledge after commit."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--group",
            default=os.environ.get("MQTT_SHARED_GROUP") or None,
            help="shared subscription group ($share/<group>/...) to split the load between "
            "workers (default: $MQTT_SHARED_GROUP, else none)",
        )
        parser.add_argument(
            "--client-id",
            default=os.environ.get("MQTT_CLIENT_ID") or None,
            help="MQTT client id; keep it stable so the broker keeps the session across "
            "restarts (default: csu-ingest[-<group>]-<hostname>)",
        )
        parser.add_argument("--url", default=None, help="broker URL (default: MQTT_URL)")
        parser.add_argument("--batch-size", type=int, default=5000, help="messages per batch")
        parser.add_argument(
            "--batch-interval", type=float, default=0.2, help="seconds between batches"
        )

    def handle(self, *args, **options):
        logging.getLogger("sensors").setLevel(logging.INFO)
        group = options["group"]
        client_id = options["client_id"] or default_client_id(
            f"csu-ingest-{group}" if group else "csu-ingest"
        )
        worker = IngestWorker(
            client_id=client_id,
            url=options["url"],
            group=group,
            batch_size=options["batch_size"],
            batch_interval=options["batch_interval"],
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: worker.stop())
        self.stdout.write(f"ingest worker {client_id} starting")
        worker.run()
        self.stdout.write(
            f"ingest worker {client_id} stopped: {worker.stats.snapshot()['counters']}"
        )
