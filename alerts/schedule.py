"""When a rule is active: days of the week and a time window, in the town's time zone.

A window may pass midnight (22:00 → 06:00); its hours after midnight belong to the day
it started, so "Friday 22:00 → 06:00" covers Saturday 03:00. Wall-clock times in
Europe/Paris make the window follow the DST changes. Start equal to end: all day.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def in_schedule(rule, moment: datetime) -> bool:
    local = moment.astimezone(ZoneInfo(settings.TIME_ZONE))
    days = set(rule.days or range(7))
    start, end, now = rule.start_time, rule.end_time, local.time()
    if start == end:
        return local.weekday() in days
    if start < end:
        return start <= now < end and local.weekday() in days
    if now >= start:
        return local.weekday() in days
    if now < end:
        return (local - timedelta(days=1)).weekday() in days
    return False
