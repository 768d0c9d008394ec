import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from core.management.arguments import positive
from sensors.ingest.slots import claim_client_id
from sensors.ingest.worker import BATCH_INTERVAL, BATCH_SIZE, IngestWorker


class Command(BaseCommand):
    help = (
        "Run the MQTT ingest worker: subscribe to csu/+/readings and csu/+/status (QoS 1, "
        "persistent session), write batches, acknowledge after commit."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--group",
            default=settings.MQTT_SHARED_GROUP or None,
            help="shared subscription group ($share/<group>/...) to split the load between "
            "workers (default: $MQTT_SHARED_GROUP, else none)",
        )
        parser.add_argument(
            "--client-id",
            default=settings.MQTT_CLIENT_ID or None,
            help="MQTT client id, stable so the broker keeps the session across restarts "
            "(default: csu-ingest; with a group, the first free slot csu-ingest-<group>-<n>)",
        )
        parser.add_argument("--url", default=None, help="broker URL (default: MQTT_URL)")
        parser.add_argument(
            "--batch-size",
            type=positive(int),
            default=BATCH_SIZE,
            help="messages that start a batch at once (else every --batch-interval); keep it "
            "below the broker's in-flight window (max_inflight_messages, 1000 in our config)",
        )
        parser.add_argument(
            "--batch-interval",
            type=positive(float),
            default=BATCH_INTERVAL,
            help=f"seconds between batches (default {BATCH_INTERVAL})",
        )

    def handle(self, *args, **options):
        logging.getLogger("sensors").setLevel(logging.INFO)
        group = options["group"]
        client_id, _slot = options["client_id"], None
        if not client_id:
            if group:
                # Keep the returned connection: it holds the slot for this process's life.
                client_id, _slot = claim_client_id(f"csu-ingest-{group}")
            else:
                client_id = "csu-ingest"
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
