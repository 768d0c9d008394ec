"""Exports of tabular data (readings, alerts) as files, in one of three formats.

- ``csv-fr`` opens as is in a French spreadsheet: ``;`` separator, decimal comma, UTF-8
  with a BOM (without it Excel reads the file as Windows-1252), French headers and
  labels, times as ``23/11/2026 08:00:00`` in Europe/Paris. That text is ambiguous for
  the hour repeated when clocks go back in October, so each time column also comes
  as ISO 8601 with its UTC offset (``2026-10-25T02:30:00+02:00``), in a column of its
  own appended after the others (files read by column position keep their layout).
- ``csv``: RFC 4180 CSV with commas and decimal points, UTF-8 without BOM, the API's
  keys as headers and RFC 3339 UTC times.
- ``json``: an array of objects keyed like the API.

Callers describe their columns and give rows of plain Python values (str, int, float,
datetime, None); this module only formats. The response streams: under ASGI a plain
generator would be buffered whole by Django, so it is served through an async wrapper.

An export holds at most ``EXPORT_MAX_ROWS`` rows: callers count first
(``ensure_within_cap``), and a larger one is refused with a 413 naming the limit, never
cut short.
"""

import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import islice
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework.negotiation import DefaultContentNegotiation

from core.api import TooLarge
from core.fields import ChoiceParam, rfc3339

CSV_FR, CSV, JSON = "csv-fr", "csv", "json"
FORMATS = (CSV_FR, CSV, JSON)
BOM = "\ufeff"
# Rows formatted per chunk sent to the client.
CHUNK_ROWS = 2000
# Spreadsheets run a cell starting with these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str  # header of csv and json
    label: str  # header of csv-fr
    # csv-fr shows the label of a coded value (state, severity…) rather than its code.
    labels: Mapping[str, str] = field(default_factory=dict)
    # Holds datetimes: csv-fr appends the same times as ISO 8601 with their offset.
    time: bool = False


class FormatParam(ChoiceParam):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", CSV_FR)
        kwargs.setdefault(
            "help_text",
            _(
                "csv-fr (tableur français : « ; », virgule décimale, heure de Paris), "
                "csv (virgules, points, heures UTC RFC 3339) ou json (un tableau)."
            ),
        )
        super().__init__(choices=FORMATS, **kwargs)


class ExportNegotiation(DefaultContentNegotiation):
    """Leave ``?format=`` to the export: DRF would take it for a renderer and answer 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


TOO_LARGE = OpenApiResponse(
    {
        "type": "object",
        "properties": {"detail": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["detail", "limit"],
    },
    description=_("Export refusé : plus de lignes que la limite (EXPORT_MAX_ROWS), nommée."),
)


def max_rows() -> int:
    """The most rows an export holds (``EXPORT_MAX_ROWS``)."""
    return settings.EXPORT_MAX_ROWS


def too_large_message(limit: int) -> str:
    return _(
        "Export refusé : plus de %(max)s lignes, la limite d'un export. "
        "Choisissez une période plus courte."
    ) % {"max": f"{limit:,}".replace(",", "\u202f")}


def ensure_within_cap(count: int, *, hint: str = "") -> None:
    """Refuse (413, naming the limit) an export of more than ``max_rows()`` rows.

    ``count`` need not be exact beyond the limit: count at most ``max_rows() + 1``.
    """
    limit = max_rows()
    if count > limit:
        raise TooLarge(f"{too_large_message(limit)} {hint}".strip(), limit=limit)


# --- Cells ------------------------------------------------------------------------------


def _plain_number(value: float) -> str:
    """The shortest exact text of a number, never in scientific notation."""
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _cell_fr(value, column: Column, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return _plain_number(value).replace(".", ",")
    return neutralised(str(column.labels.get(value, value)))


def neutralised(text: str) -> str:
    """A text cell a spreadsheet will not run: one starting like a formula gets a quote."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _plain_number(value)
    return neutralised(str(value))


def _json_value(value):
    if isinstance(value, datetime):
        return rfc3339(value)
    return value


# --- Lines ------------------------------------------------------------------------------


class _Line:
    """A file-like object for csv.writer that hands back the line it was given."""

    def write(self, text: str) -> str:
        return text


def _iso_local(value, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).isoformat(timespec="seconds")


def _csv_lines(columns: Sequence[Column], rows: Iterable[Sequence], fmt: str) -> Iterator[bytes]:
    if fmt == CSV_FR:
        writer = csv.writer(_Line(), delimiter=";")
        zone = ZoneInfo(settings.TIME_ZONE)
        times = [i for i, c in enumerate(columns) if c.time]
        headers = [str(c.label) for c in columns]
        headers += [_("%(label)s — ISO 8601") % {"label": columns[i].label} for i in times]
        yield (BOM + writer.writerow(headers)).encode()
        for row in rows:
            cells = [_cell_fr(v, c, zone) for v, c in zip(row, columns, strict=True)]
            cells += [_iso_local(row[i], zone) for i in times]
            yield writer.writerow(cells).encode()
    else:
        writer = csv.writer(_Line())
        yield writer.writerow([c.key for c in columns]).encode()
        for row in rows:
            yield writer.writerow([_cell(v) for v in row]).encode()


def _json_lines(columns: Sequence[Column], rows: Iterable[Sequence]) -> Iterator[bytes]:
    keys = [c.key for c in columns]
    separator = "[\n"
    for row in rows:
        item = {key: _json_value(v) for key, v in zip(keys, row, strict=True)}
        yield (separator + json.dumps(item, ensure_ascii=False)).encode()
        separator = ",\n"
    yield ("[]\n" if separator == "[\n" else "\n]\n").encode()


def _chunks(lines: Iterator[bytes]) -> Iterator[bytes]:
    while chunk := b"".join(islice(lines, CHUNK_ROWS)):
        yield chunk


async def _async_chunks(lines: Iterator[bytes]):
    # thread_sensitive: the rows may come from a database cursor opened by the view.
    take = sync_to_async(lambda: b"".join(islice(lines, CHUNK_ROWS)), thread_sensitive=True)
    while chunk := await take():
        yield chunk


# --- Response ---------------------------------------------------------------------------


CONTENT_TYPES = {
    CSV_FR: "text/csv; charset=utf-8",
    CSV: "text/csv; charset=utf-8",
    JSON: "application/json",
}


def export_response(
    request,
    *,
    columns: Sequence[Column],
    rows: Iterable[Sequence],
    fmt: str,
    filename: str,
) -> StreamingHttpResponse:
    """Stream ``rows`` as an attachment named ``filename`` (without extension) in ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    lines = _json_lines(columns, rows) if fmt == JSON else _csv_lines(columns, rows, fmt)
    http_request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    content = _async_chunks(lines) if isinstance(http_request, ASGIRequest) else _chunks(lines)
    response = StreamingHttpResponse(content, content_type=CONTENT_TYPES[fmt])
    extension = "json" if fmt == JSON else "csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}.{extension}"'
    return response


def stamp(moment: datetime) -> str:
    """A compact local time for file names: 20261123-0800."""
    return moment.astimezone(ZoneInfo(settings.TIME_ZONE)).strftime("%Y%m%d-%H%M")
