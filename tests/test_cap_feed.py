"""The CAP Atom feed as aggregators read it: feedparser, embedded CAP alerts valid against
OASIS's schema, the end of each subject kept a while, and conditional requests."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
import time_machine
from django.test import override_settings
from lxml import etree
from rest_framework.test import APIClient

from core.cap import CAP_NS, CAP_SCHEMA
from ppms.services import ppms_activate, ppms_cancel
from tests.conftest import make_school, sign_in
from tests.ppms_helpers import end_of_alert
from tests.test_cap import make_alert

FEED = "/api/v1/cap/feed/"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP = f"{{{CAP_NS}}}"
T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Paris


@pytest.fixture(scope="module")
def xsd():
    return etree.XMLSchema(etree.parse(str(CAP_SCHEMA)))


@pytest.fixture
def api(operator):
    return sign_in(APIClient(), operator)


def read(api, **headers):
    response = api.get(FEED, **headers)
    assert response.status_code == 200, response.content
    return response


def embedded_alerts(response) -> dict[str, ET.Element]:
    """The CAP alert of each entry, by the entry's id."""
    root = ET.fromstring(response.content)
    return {
        entry.findtext(f"{ATOM}id"): entry.find(f"{ATOM}content/{CAP}alert")
        for entry in root.findall(f"{ATOM}entry")
    }


def activate(*schools, **fields):
    fields = {"scenario": "confinement", "title": "Nuage toxique", "source": "operator", **fields}
    return ppms_activate(schools=list(schools), drill=False, now=T0, **fields)


# --- What a reader parses ---------------------------------------------------------------


def test_feedparser_reads_each_entry_with_its_cap_link_and_embedded_alert(api, sensor, school):
    alert = make_alert(sensor)
    activate(school)

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        parsed = feedparser.parse(read(api).content)

    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "CSU — alertes et PPMS en cours"
    assert len(parsed.entries) == 2
    for entry in parsed.entries:
        assert entry.links[0].type == "application/cap+xml"
        # feedparser keeps inline markup only for XHTML: it reports the type, and CAP
        # readers parse the content's XML themselves (the next test).
        assert entry.content[0].type == "text/xml"
    links = {entry.links[0].href for entry in parsed.entries}
    assert f"http://localhost:8000/api/v1/alerts/{alert.pk}/cap/" in links
    assert {entry.id for entry in parsed.entries} == set(embedded_alerts(read(api)))


def test_every_embedded_alert_is_valid_cap_with_expires_and_geocodes(api, xsd, sensor, school):
    make_alert(sensor)
    activate(school)

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        alerts = embedded_alerts(read(api))

    assert len(alerts) == 2
    for identifier, alert in alerts.items():
        document = etree.fromstring(ET.tostring(alert))
        assert xsd.validate(document), xsd.error_log
        assert alert.findtext(f"{CAP}identifier") == identifier
        assert alert.findtext(f"{CAP}info/{CAP}expires")
    by_kind = {":ppms:" in identifier: alert for identifier, alert in alerts.items()}
    geocodes = {
        kind: [
            (geocode.findtext(f"{CAP}valueName"), geocode.findtext(f"{CAP}value"))
            for geocode in alert.findall(f"{CAP}info/{CAP}area/{CAP}geocode")
        ]
        for kind, alert in by_kind.items()
    }
    assert geocodes[False] == [("INSEE", "37122")]
    assert geocodes[True] == [("INSEE", "37122"), ("UAI", "0370001A")]


def test_an_open_alert_expires_a_week_after_its_latest_message(api, sensor):
    make_alert(sensor)

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        (alert,) = embedded_alerts(read(api)).values()

    assert alert.findtext(f"{CAP}info/{CAP}expires") == "2026-11-30T08:00:00+01:00"


# --- The end of a subject stays a while -------------------------------------------------


def test_an_all_clear_entry_stays_after_the_alert_resolves_then_leaves(api, sensor, operator):
    alert = make_alert(sensor)
    alert.resolve(by=operator, now=T0 + timedelta(hours=1))

    with time_machine.travel(T0 + timedelta(hours=1, minutes=5), tick=False):
        kept = embedded_alerts(read(api))
    with time_machine.travel(T0 + timedelta(hours=25, seconds=1), tick=False):
        gone = embedded_alerts(read(api))

    (message,) = kept.values()
    assert message.findtext(f"{CAP}msgType") == "Update"
    assert message.findtext(f"{CAP}info/{CAP}responseType") == "AllClear"
    # It expires when it leaves the feed.
    assert message.findtext(f"{CAP}info/{CAP}expires") == "2026-11-24T09:00:00+01:00"
    assert gone == {}


@override_settings(CAP_FEED_KEEP_HOURS=2)
def test_the_time_an_ended_item_stays_is_a_setting(api, sensor, operator):
    alert = make_alert(sensor)
    alert.resolve(by=operator, now=T0 + timedelta(hours=1))

    with time_machine.travel(T0 + timedelta(hours=2, minutes=59), tick=False):
        kept = embedded_alerts(read(api))
    with time_machine.travel(T0 + timedelta(hours=3, seconds=1), tick=False):
        gone = embedded_alerts(read(api))

    assert len(kept) == 1
    assert gone == {}


def test_the_end_of_a_ppms_activation_is_an_all_clear_entry(api, school, operator):
    activation = activate(school)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(hours=2))

    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        (message,) = embedded_alerts(read(api)).values()
    with time_machine.travel(T0 + timedelta(hours=26, seconds=1), tick=False):
        gone = embedded_alerts(read(api))

    assert message.findtext(f"{CAP}info/{CAP}responseType") == "AllClear"
    assert gone == {}


def test_an_activation_sent_in_error_leaves_a_cancel_entry(api, school, operator):
    activation = activate(school)
    ppms_cancel(activation=activation, by=operator, reason="test", now=T0 + timedelta(minutes=3))

    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        (message,) = embedded_alerts(read(api)).values()

    assert message.findtext(f"{CAP}msgType") == "Cancel"


def test_the_ended_items_of_another_commune_stay_out(sensor, operator, other_operator):
    alert = make_alert(sensor)
    alert.resolve(by=operator, now=T0 + timedelta(hours=1))
    api = sign_in(APIClient(), other_operator)

    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        assert embedded_alerts(read(api)) == {}


# --- Updated, ETag, Last-Modified -------------------------------------------------------


def test_the_feed_updated_moves_with_every_message(api, sensor, operator):
    alert = make_alert(sensor)
    updated = []

    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        updated.append(feedparser.parse(read(api).content).feed.updated)
        alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
        updated.append(feedparser.parse(read(api).content).feed.updated)
        alert.resolve(by=operator, now=T0 + timedelta(hours=1))
        updated.append(feedparser.parse(read(api).content).feed.updated)

    assert updated == [
        "2026-11-23T08:00:00+01:00",
        "2026-11-23T08:20:00+01:00",
        "2026-11-23T09:00:00+01:00",
    ]


def test_the_current_etag_gets_a_304_and_a_stale_one_the_new_feed(api, sensor, operator):
    alert = make_alert(sensor)

    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        first = read(api)
        unchanged = api.get(FEED, HTTP_IF_NONE_MATCH=first["ETag"])
        alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
        changed = api.get(FEED, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first["Last-Modified"] == "Mon, 23 Nov 2026 07:00:00 GMT"
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == first["ETag"]
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    assert changed["Last-Modified"] == "Mon, 23 Nov 2026 07:20:00 GMT"
    assert len(embedded_alerts(changed)) == 1


def test_feedparser_polls_with_the_etag_and_gets_a_304(api, sensor):
    make_alert(sensor)

    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        first = read(api)
        again = api.get(
            FEED,
            HTTP_IF_NONE_MATCH=first["ETag"],
            HTTP_IF_MODIFIED_SINCE=first["Last-Modified"],
        )

    assert again.status_code == 304


def test_if_modified_since_alone_gets_a_304_when_nothing_changed(api, sensor, operator):
    alert = make_alert(sensor)

    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        first = read(api)
        unchanged = api.get(FEED, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
        alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
        changed = api.get(FEED, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])

    assert unchanged.status_code == 304
    assert unchanged["ETag"] == first["ETag"]
    assert unchanged["Cache-Control"] == "private, no-cache"
    assert changed.status_code == 200
    assert changed["Last-Modified"] == "Mon, 23 Nov 2026 07:20:00 GMT"


def test_an_item_leaving_the_feed_moves_its_last_modified(api, sensor, operator):
    # Resolved at 08:00 UTC, its AllClear leaves the feed at 08:00 UTC the next day: the
    # feed changes then without a newer message, and says so.
    alert = make_alert(sensor)
    alert.resolve(by=operator, now=T0 + timedelta(hours=1))

    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        kept = read(api)
    with time_machine.travel(T0 + timedelta(hours=25, minutes=5), tick=False):
        left = api.get(FEED, HTTP_IF_MODIFIED_SINCE=kept["Last-Modified"])
        again = api.get(FEED, HTTP_IF_MODIFIED_SINCE=left["Last-Modified"])

    assert kept["Last-Modified"] == "Mon, 23 Nov 2026 08:00:00 GMT"
    assert left.status_code == 200
    assert embedded_alerts(left) == {}
    assert left["Last-Modified"] == "Tue, 24 Nov 2026 08:00:00 GMT"
    assert feedparser.parse(left.content).feed.updated == "2026-11-24T09:00:00+01:00"
    assert again.status_code == 304


def test_an_activation_leaving_the_feed_moves_its_last_modified(api, school, operator):
    activation = activate(school)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(hours=2))

    with time_machine.travel(T0 + timedelta(hours=26, minutes=5), tick=False):
        left = read(api)

    assert left["Last-Modified"] == "Tue, 24 Nov 2026 09:00:00 GMT"


def test_a_message_of_the_last_seconds_gives_no_last_modified_yet(api, sensor, operator):
    # Another message may still come within the same second (HTTP dates have no
    # fraction): until it has settled, the ETag alone validates the feed.
    alert = make_alert(sensor)

    with time_machine.travel(T0 + timedelta(minutes=20, seconds=1), tick=False):
        alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
        fresh = read(api)
        asked = api.get(FEED, HTTP_IF_MODIFIED_SINCE="Mon, 23 Nov 2026 07:20:00 GMT")
    with time_machine.travel(T0 + timedelta(minutes=21), tick=False):
        settled = read(api)

    assert "Last-Modified" not in fresh
    assert fresh["ETag"]
    assert asked.status_code == 200
    assert settled["Last-Modified"] == "Mon, 23 Nov 2026 07:20:00 GMT"


def test_a_stale_etag_wins_over_a_current_if_modified_since(api, sensor, operator):
    alert = make_alert(sensor)

    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        first = read(api)
        alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
        changed = api.get(
            FEED,
            HTTP_IF_NONE_MATCH=first["ETag"],
            HTTP_IF_MODIFIED_SINCE="Mon, 23 Nov 2026 07:30:00 GMT",
        )

    assert changed.status_code == 200


def test_the_etag_differs_with_who_asks(api, commune, sensor, other_operator):
    make_alert(sensor)
    other = sign_in(APIClient(), other_operator)

    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        mine, theirs = read(api), read(other)
        crossed = other.get(FEED, HTTP_IF_NONE_MATCH=mine["ETag"])

    assert mine["ETag"] != theirs["ETag"]
    assert crossed.status_code == 200
    assert mine["Cache-Control"] == "private, no-cache"


def test_the_cap_link_of_each_entry_answers_with_the_embedded_document(api, sensor, school):
    make_alert(sensor)
    activate(make_school(school.commune, uai="0370009Z"))

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        response = read(api)
        parsed = feedparser.parse(response.content)
        documents = [
            api.get(entry.links[0].href.removeprefix("http://localhost:8000"))
            for entry in parsed.entries
        ]

    alerts = embedded_alerts(response)
    for entry, document in zip(parsed.entries, documents, strict=True):
        assert document.status_code == 200
        assert document["Content-Type"] == "application/cap+xml; charset=utf-8"
        assert ET.fromstring(document.content).findtext(f"{CAP}identifier") == entry.id
        assert entry.id in alerts
