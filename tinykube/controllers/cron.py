"""Standard 5-field cron schedules, as the cronjob controller reads ``spec.schedule``.

Fields are minute, hour, day of month, month and day of week, each ``*``, a number, a
range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; months and weekdays
also by name (``JAN``, ``MON``), Sunday as 0 or 7. Descriptors ``@yearly``/``@annually``,
``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly`` and ``@every <duration>``
are accepted, and a ``CRON_TZ=``/``TZ=`` prefix names the time zone. As in the cron
library Kubernetes uses, when both day fields are restricted a day matching either one
matches.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {m: i + 1 for i, m in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$")


class CronError(ValueError):
    """An unparseable schedule (the message is what validation reports)."""


def _value(text: str, names: dict[str, int], lo: int, hi: int) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    value = int(text)
    if value < lo or value > hi:
        raise CronError(f"end of range ({value}) above maximum ({hi})" if value > hi
                        else f"beginning of range ({value}) below minimum ({lo})")
    return value


def parse_field(text: str, lo: int, hi: int, names: dict[str, int] | None = None
                ) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it was ``*`` (unrestricted)."""
    names = names or {}
    values: set[int] = set()
    star = False
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in {text!r}")
            step = int(step_text)
        if rng in ("*", "?"):
            start, end = lo, hi
            star = star or not step_text
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start, end = _value(a, names, lo, hi), _value(b, names, lo, hi)
            if start > end:
                raise CronError(f"beginning of range ({start}) beyond end of range ({end})")
        else:
            start = _value(rng, names, lo, hi)
            end = hi if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values), star


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool
    tz: dt.tzinfo
    every: dt.timedelta | None = None

    def _day_matches(self, when: dt.datetime) -> bool:
        dom = when.day in self.days
        dow = (when.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """The first activation strictly after ``after`` (None within 5 years: never)."""
        if self.every is not None:
            return after + self.every
        local = after.astimezone(self.tz).replace(second=0, microsecond=0) + \
            dt.timedelta(minutes=1)
        limit = local + dt.timedelta(days=366 * 5)
        while local < limit:
            if local.month not in self.months:
                year, month = (local.year + 1, 1) if local.month == 12 else \
                    (local.year, local.month + 1)
                local = local.replace(year=year, month=month, day=1, hour=0, minute=0)
                continue
            if not self._day_matches(local):
                local = (local + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if local.hour not in self.hours:
                local = (local + dt.timedelta(hours=1)).replace(minute=0)
                continue
            if local.minute not in self.minutes:
                local += dt.timedelta(minutes=1)
                continue
            return local.astimezone(dt.timezone.utc)
        return None


def _duration(text: str) -> dt.timedelta:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return dt.timedelta(seconds=total)


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    """Parse ``spec.schedule`` (and ``spec.timeZone``); raises CronError."""
    text = schedule.strip()
    tz_name = time_zone
    if text.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, text = text.partition(" ")
        tz_name = prefix.split("=", 1)[1]
        text = text.strip()
    try:
        tz: dt.tzinfo = ZoneInfo(tz_name) if tz_name else dt.timezone.utc
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {tz_name}") from exc
    every = _EVERY.match(text)
    if every:
        step = _duration(every.group(1))
        if step <= dt.timedelta(0):
            raise CronError(f"invalid duration in {text!r}")
        return Schedule(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(),
                        True, True, tz, every=step)
    text = _DESCRIPTORS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    minutes, _ = parse_field(fields[0], 0, 59)
    hours, _ = parse_field(fields[1], 0, 23)
    days, days_star = parse_field(fields[2], 1, 31)
    months, _ = parse_field(fields[3], 1, 12, _MONTHS)
    weekdays, weekdays_star = parse_field(fields[4], 0, 7, _DAYS)
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    return Schedule(minutes, hours, days, months, weekdays, days_star, weekdays_star, tz)
