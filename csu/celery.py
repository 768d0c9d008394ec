import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csu.settings")

app = Celery("csu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def tidy_connections(**kwargs) -> None:
    """Around each task, what Django does around each request: close the connections
    that broke or outlived CONN_MAX_AGE, keep the others (settings.CELERY_DB_REUSE_MAX)."""
    from django.db import close_old_connections

    close_old_connections()
