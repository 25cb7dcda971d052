"""Dates as the assistant counts and says them (every stored time is UTC)."""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta


def format_day(value: dt.date | dt.datetime) -> str:
    """A day in the next or last few weeks: "Tuesday 24 November"."""
    return f"{value:%A} {value.day} {value:%B}"


def format_date(value: dt.date | dt.datetime) -> str:
    """A date further away than a few weeks, with its year: "3 November 2027"."""
    return f"{value.day} {value:%B} {value:%Y}"


def add_business_days(start: dt.date, days: int) -> dt.date:
    current = start
    while days > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day when it is shorter."""
    return day + relativedelta(months=months)
