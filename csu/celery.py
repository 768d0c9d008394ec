import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csu.settings")

app = Celery("csu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def tidy_connections(task=None, **kwargs) -> None:
    """Around each task a worker runs, what Django does around each request: close the
    connections that broke or outlived CONN_MAX_AGE, keep the others
    (settings.CELERY_DB_REUSE_MAX). Not around a task run eagerly (embedded, tests): it
    runs in its caller's connection, maybe in the caller's transaction."""
    from django.db import close_old_connections

    if task is not None and task.request.is_eager:
        return
    close_old_connections()
