from django.core.management.base import BaseCommand

from core.webpush import new_keys


class Command(BaseCommand):
    help = "Print a new VAPID key pair for Web Push, as the environment variables to set."

    def handle(self, *args, **options):
        private, public = new_keys()
        self.stdout.write(f"WEBPUSH_VAPID_PRIVATE_KEY={private}\nWEBPUSH_VAPID_PUBLIC_KEY={public}")
