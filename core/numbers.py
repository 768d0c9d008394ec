"""Numbers for French readers, in one place: alert titles, e-mails, CAP texts, tiles.

A decimal comma, digits grouped by three with a narrow no-break space (U+202F, as the
pages' scripts write them with ``Intl.NumberFormat("fr")``), no trailing zeros, and the
unit after a no-break space (U+00A0) — "4,6 m", "1 250 véh./h", "pH 7,2". Machine
numbers (CSV, JSON, CAP parameters) are not written with this. Pages write their numbers
in the reader's language (``local_number``): the same rounding, English's separators in
English.
"""

import math
from decimal import ROUND_HALF_UP, Context, Decimal

from django.utils.translation import get_language

NARROW_NBSP = "\u202f"  # between groups of digits
NBSP = "\u00a0"  # between a number and its unit
# Units that are not written after the number: a state (0 or 1) has none, pH comes first.
NO_UNIT = ("", "state")


def french_number(value: float, digits: int | None = None, unit: str = "") -> str:
    """``value`` rounded to ``digits`` decimals (None: as precise as it is, up to 6),
    trailing zeros dropped, with its ``unit``."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    places = 6 if digits is None else digits
    # Halves away from zero, as the pages' scripts round (Intl.NumberFormat): 3,25 → 3,3.
    rounded = Decimal(repr(abs(float(value)))).quantize(
        Decimal(1).scaleb(-places), ROUND_HALF_UP, Context(prec=400)
    )
    text = f"{rounded:f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    groups = []
    while len(whole) > 3:
        whole, group = whole[:-3], whole[-3:]
        groups.insert(0, group)
    whole = NARROW_NBSP.join([whole, *groups])
    negative = value < 0 and any(c != "0" for c in text if c.isdigit())
    shown = ("-" if negative else "") + whole + ("," + fraction if fraction else "")
    if unit in NO_UNIT:
        return shown
    if unit == "pH":
        return f"pH{NBSP}{shown}"
    return f"{shown}{NBSP}{unit}"


def local_number(value: float, digits: int | None = None) -> str:
    """``french_number`` in French; in English the same rounding with a decimal point and
    commas between thousands ("1,250.5"), as the pages' scripts write them with
    ``Intl.NumberFormat("en")``."""
    text = french_number(value, digits)
    if (get_language() or "fr").startswith("fr"):
        return text
    return text.replace(",", ".").replace(NARROW_NBSP, ",")
