"""Make the readings table range-partitioned by day on PostgreSQL.

It runs right after the table was created, so the table is empty. Other databases
keep the plain table from 0001.
"""

from django.db import migrations

from sensors.partitions import (
    CREATE_PARTITIONED_SQL,
    CREATE_PLAIN_SQL,
    maintain_reading_partitions,
)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_PARTITIONED_SQL)
    maintain_reading_partitions(conn=schema_editor.connection)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_PLAIN_SQL)


class Migration(migrations.Migration):
    dependencies = [("sensors", "0001_initial")]

    operations = [migrations.RunPython(partition, unpartition)]
