import asyncio

from django.core.management.base import BaseCommand

from csu.embedded import serve


class Command(BaseCommand):
    help = "Run the whole CSU in one process on the embedded default (web, MQTT broker)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, **options):
        asyncio.run(serve(host=options["host"], port=options["port"]))
