import asyncio
import shlex

from django.core.management.base import BaseCommand

from csu.embedded import serve


class Command(BaseCommand):
    help = (
        "Run the whole CSU in one process on the embedded default: web, MQTT broker, "
        "ingest worker and the demo simulator."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--simulate",
            default="--scenario pollution,flood,intrusion --scenario-delay 20 --speed 60",
            help="arguments of the simulator (manage.py simulate); 'off' to run without it",
        )

        parser.add_argument(
            "--access-log",
            action="store_true",
            help="log every HTTP request (quiet by default)",
        )

    def handle(self, *args, **options):
        simulate = None if options["simulate"] == "off" else shlex.split(options["simulate"])
        asyncio.run(
            serve(
                host=options["host"],
                port=options["port"],
                simulate=simulate,
                access_log=options["access_log"],
            )
        )
