from django.core.management.base import BaseCommand

from sensors.partitions import maintain_reading_partitions


class Command(BaseCommand):
    help = "Create the readings partitions ahead and drop those past the retention window."

    def handle(self, *args, **options):
        report = maintain_reading_partitions()
        self.stdout.write(
            f"created {len(report.created)} partition(s), dropped {len(report.dropped)}, "
            f"deleted {report.deleted_rows} old row(s)"
        )
        for name in report.created:
            self.stdout.write(f"  + {name}")
        for name in report.dropped:
            self.stdout.write(f"  - {name}")
