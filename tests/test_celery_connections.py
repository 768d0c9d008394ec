"""The Celery worker keeps its database connection from one task to the next (a new
PostgreSQL backend for each evaluation of a batch cost the worker and the server), and
closes it as a web request would when it broke."""

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from csu.celery import app, tidy_connections


@pytest.mark.postgres  # a worker's connection (embedded, tasks run eagerly; CONN_MAX_AGE 0)
def test_a_sound_connection_outlives_the_tasks(transactional_db):
    connection.ensure_connection()
    kept = connection.connection
    fixup = DjangoWorkerFixup(app)
    for _ in range(3):  # what Celery does before and after each task
        fixup.close_database()
        tidy_connections()
        fixup.close_database()
        tidy_connections()
    assert connection.connection is kept


def test_a_broken_connection_is_closed_after_its_task(transactional_db):
    connection.ensure_connection()
    connection.connection.close()  # the server went away
    connection.errors_occurred = True  # as Django marks it when a query fails
    tidy_connections()
    assert connection.connection is None
    with connection.cursor() as cursor:  # the next task connects again
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_task_run_eagerly_leaves_its_callers_transaction_alone(db):
    from alerts.tasks import evaluate_pending

    assert connection.in_atomic_block  # the test's transaction, as a caller's would be
    kept = connection.connection
    evaluate_pending.apply()  # eagerly, as the embedded server and the tests run tasks
    assert connection.connection is kept
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
