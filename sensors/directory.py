"""The sensors as the hot paths need them: by ref for ingest, by id for the live push.

Loaded whole (a town has hundreds of sensors, a métropole a few thousand) into a
``core.cache.ProcessCache``: a change (a sensor added, disabled or moved to another
commune) reaches every process within ``CONFIG_CACHE_S`` seconds, at once in the process
that made it.
"""

from typing import NamedTuple

from core.cache import ProcessCache

from .models import Sensor


class Entry(NamedTuple):
    id: int
    ref: str
    kind: str
    active: bool
    commune_id: int


class Directory(NamedTuple):
    by_ref: dict[str, Entry]
    by_id: dict[int, Entry]


def _load(_key=None) -> Directory:
    entries = [
        Entry(*row)
        for row in Sensor.objects.values_list("pk", "ref", "kind", "active", "commune_id")
    ]
    return Directory(
        {entry.ref: entry for entry in entries}, {entry.id: entry for entry in entries}
    )


_directory: ProcessCache[None, Directory] = ProcessCache(_load)


def by_ref(ref: str) -> Entry | None:
    return _directory.get(None).by_ref.get(ref)


def by_id(sensor_id: int) -> Entry | None:
    return _directory.get(None).by_id.get(sensor_id)


def forget() -> None:
    """Load again at the next look-up (ingest, after a batch refused for a missing sensor)."""
    _directory.forget()
