"""Backups: the pg_dump and pg_restore commands of docs/operations.md, run for real.

The test reads the commands from the documentation's "Back up and restore" block, runs
them against the test database (host, user and database names swapped for the test's),
restores into a fresh database and compares the two: so what the documentation says is
what is tested.
"""

import glob
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from alerts.models import Alert, AlertEvent, Rule
from ppms.models import Activation, ActivationEvent, Proposal, School, SchoolStatus
from ppms.proposals import ppms_validate
from ppms.services import ppms_report
from sensors.models import LatestReading, Reading, Sensor
from sensors.partitions import maintain_reading_partitions
from tests.alerting import feed, make_rule
from tests.conftest import IN_CI, make_sensor

pytestmark = pytest.mark.postgres

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
PREFIX = "docker compose exec -T postgres "

# Compared whole, row by row, before and after.
TABLES = {
    Sensor._meta.db_table: "id",
    Reading._meta.db_table: "sensor_id, metric, ts",
    LatestReading._meta.db_table: "sensor_id, metric",
    Rule._meta.db_table: "id",
    Alert._meta.db_table: "id",
    AlertEvent._meta.db_table: "id",
    School._meta.db_table: "id",
    Activation._meta.db_table: "id",
    SchoolStatus._meta.db_table: "id",
    ActivationEvent._meta.db_table: "id",
}


def documented_commands() -> list[str]:
    """The `docker compose exec -T postgres …` lines of the backup section, in order."""
    text = OPERATIONS.read_text()
    section = text.split("## Back up and restore", 1)[1].split("\n## ", 1)[0]
    return [line[len(PREFIX) :] for line in section.splitlines() if line.startswith(PREFIX)]


def for_this_server(command: str, *, database: str, dump: Path) -> str:
    """The command as run against the test's server: its user, that database, that file."""
    command = command.replace("-U csu ", f"-U {connection.settings_dict['USER']} ")
    command = re.sub(r"csu-(\$\(date \+%F\)|[0-9-]+)\.dump", str(dump), command)
    assert ".dump" not in command or str(dump) in command, f"which dump file? {command}"
    return re.sub(r"(?<![\w.-])csu(?![\w.-])", database, command)


def client_programs() -> str:
    """A PATH with PostgreSQL's client programs, the newest version's first."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    path = os.pathsep.join([*reversed(versions), os.environ.get("PATH", "")])
    if not all(shutil.which(p, path=path) for p in ("pg_dump", "pg_restore", "createdb")):
        message = "pg_dump and pg_restore are needed: apt-get install postgresql-client"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing tool fails the run)")
        pytest.skip(message)
    return path


def run_documented(command: str, env: dict) -> None:
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"


def table_rows(conn, table: str, order: str) -> list[tuple]:
    return conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()


def fill_town(commune, flood_zone, school, director):
    """A town's worth of what matters: readings over several days, an alert, a PPMS."""
    now = datetime.now(UTC).replace(microsecond=0)
    maintain_reading_partitions(now=now)
    air = make_sensor(commune, "jlt-air-01")
    river = make_sensor(commune, "jlt-river-01", kind="water")
    river.zones.add(flood_zone)
    Reading.objects.bulk_create(
        Reading(sensor=air, metric=metric, ts=now - timedelta(hours=hours), value=hours / 3)
        for hours in range(0, 72, 2)  # three days: three daily partitions at least
        for metric in ("pm25", "no2")
    )
    LatestReading.objects.create(sensor=air, metric="pm25", ts=now, value=0.0)
    school.zones.add(flood_zone)  # its director is the `director` fixture
    rule = make_rule(
        name="Cher : évacuation (4,5 m)",
        sensor_kind="water",
        metric="level",
        threshold=4.5,
        severity="critical",
        duration=timedelta(minutes=2),
        ppms_scenario="evacuation",
    )
    rule.zones.add(flood_zone)
    # The alert proposes the PPMS; the authority validates it.
    feed(river, [3.0, 4.6, 4.7, 4.8], metric="level")
    ppms_validate(proposal=Proposal.objects.get(), by=director)
    status = Activation.objects.get().statuses.get()
    ppms_report(status=status, report={"state": "safe", "pupils_present": 178}, by=director)


def test_a_dump_restored_into_a_fresh_database_holds_the_same_data(
    transactional_db, commune, flood_zone, school, director, tmp_path
):
    fill_town(commune, flood_zone, school, director)
    settings = connection.settings_dict
    source = settings["NAME"]
    restored = f"{source}_restored"
    env = {
        **os.environ,
        "PATH": client_programs(),
        "PGHOST": settings["HOST"] or "127.0.0.1",
        "PGPORT": str(settings["PORT"] or 5432),
        "PGPASSWORD": settings["PASSWORD"] or "",
    }
    commands = documented_commands()
    assert [c.split()[0] for c in commands] == ["pg_dump", "dropdb", "createdb", "pg_restore"]
    admin = {
        "host": env["PGHOST"],
        "port": env["PGPORT"],
        "user": settings["USER"],
        "password": settings["PASSWORD"] or None,
        "autocommit": True,
    }
    # The database to be replaced exists, with an app still connected to it.
    with psycopg.connect(dbname="postgres", **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{restored}"')
    stale = psycopg.connect(dbname=restored, **admin)
    dump = tmp_path / "csu.dump"

    try:
        backup, *restore = commands
        run_documented(for_this_server(backup, database=source, dump=dump), env)
        for command in restore:
            command = for_this_server(command, database=restored, dump=dump)
            assert source not in command.split(), "never drop the database just dumped"
            run_documented(command, env)

        with (
            psycopg.connect(dbname=source, **admin) as before,
            psycopg.connect(dbname=restored, **admin) as after,
        ):
            for table, order in TABLES.items():
                rows = table_rows(before, table, order)
                assert rows, f"{table} should have been filled"
                assert table_rows(after, table, order) == rows, table
            partitions = (
                "SELECT tableoid::regclass::text, count(*) FROM sensors_reading "
                "GROUP BY 1 ORDER BY 1"
            )
            used = after.execute(partitions).fetchall()
            assert used == before.execute(partitions).fetchall()
            assert len(used) >= 3 and all(name.startswith("sensors_reading_p") for name, _ in used)
            sequences = "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
            assert after.execute(sequences).fetchall() == before.execute(sequences).fetchall()
            # A few rows by name: the partitioned parent, the alert, the PPMS report.
            assert after.execute(
                "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = 'sensors_reading'"
            ).fetchone()
            assert after.execute(
                "SELECT a.state, a.severity, r.name FROM alerts_alert a "
                "JOIN alerts_rule r ON r.id = a.rule_id"
            ).fetchall() == [("firing", "critical", "Cher : évacuation (4,5 m)")]
            assert after.execute(
                "SELECT a.scenario, s.state, s.pupils_present FROM ppms_activation a "
                "JOIN ppms_schoolstatus s ON s.activation_id = a.id"
            ).fetchall() == [("evacuation", "safe", 178)]
    finally:
        stale.close()
        with psycopg.connect(dbname="postgres", **admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
