"""Giving the end of alert in the tests as an operator does: on an authority's order,
every school still silent or needing help confirmed."""

from ppms.services import ppms_end, unsettled_schools

AUTHORITY = "Préfecture d'Indre-et-Loire (COD)"


def end_of_alert(*, activation, by, **fields):
    fields.setdefault("ordered_by", AUTHORITY)
    fields.setdefault("confirmed_schools", [school.uai for school in unsettled_schools(activation)])
    return ppms_end(activation=activation, by=by, **fields)


def end_body(activation) -> dict:
    """The body of ``POST …/end/`` for ``activation``."""
    return {
        "ordered_by": AUTHORITY,
        "confirmed_schools": [school.uai for school in unsettled_schools(activation)],
    }
