"""``{{ value|fr_number:2 }}``: a number as ``core.numbers.french_number`` writes it."""

from django import template

from core.numbers import french_number

register = template.Library()


@register.filter
def fr_number(value, digits=None):
    """``value`` for French readers, to ``digits`` decimals; "" when it is no number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    try:
        return french_number(number, None if digits in (None, "") else int(digits))
    except ValueError:  # NaN, infinity
        return ""
