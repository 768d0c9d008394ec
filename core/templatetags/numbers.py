"""``{{ value|number:2 }}``: a number as ``core.numbers.local_number`` writes it, in the
page's language."""

from django import template

from core.numbers import local_number

register = template.Library()


@register.filter
def number(value, digits=None):
    """``value`` for the page's readers, to ``digits`` decimals; "" when it is no number."""
    try:
        figure = float(value)
    except (TypeError, ValueError):
        return ""
    try:
        return local_number(figure, None if digits in (None, "") else int(digits))
    except ValueError:  # NaN, infinity
        return ""
