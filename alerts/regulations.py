"""Regulatory data, versioned: each regulation is one constant named after it.

When a regulation changes, add a new constant next to the old one rather than editing
it, so that past values can still be explained with the rules in force at the time.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Averaging(StrEnum):
    """How the concentrations of a day are reduced to the one compared to the table."""

    DAILY_MEAN = "daily_mean"
    MAX_HOURLY_MEAN = "max_hourly_mean"


@dataclass(frozen=True)
class AtmoClass:
    number: int
    label: str
    colour: str  # the background, as the guide gives it
    # The text written on it: black or white, whichever contrasts more (at least 4.5:1,
    # WCAG 2 AA; tests/test_regulations.py checks it).
    text_colour: str


@dataclass(frozen=True)
class AtmoPollutant:
    averaging: Averaging
    # The upper bound of classes 1 to 5, in µg/m³, each included in its class;
    # anything above the last one is class 6.
    upper_bounds: tuple[float, float, float, float, float]


@dataclass(frozen=True)
class AtmoRegulation:
    name: str
    source: str
    colours_source: str  # where the classes' colours come from
    classes: tuple[AtmoClass, ...]
    pollutants: Mapping[str, AtmoPollutant]

    def atmo_class(self, number: int) -> AtmoClass:
        return self.classes[number - 1]


# Source: arrêté du 10 juillet 2020 relatif à l'indice de la qualité de l'air ambiant,
# annex, in force on 1 January 2021 (its breakpoints, checked on 2026-11-23).
#
# Colours: the arrêté names the classes; their colours are those of Atmo France's "guide
# de calcul de l'indice ATMO" (2021 edition), table of the classes: bon #50F0E6, moyen
# #50CCAA, dégradé #F0E641, mauvais #FF5050, très mauvais #960032, extrêmement mauvais
# #872181. Checked on 2026-12-04 against the values published with the AASQAs' index
# data (as reused by public projects: the guide itself could not be fetched). The
# European Air Quality Index of the EEA uses the same first five but #7D2181 for its
# last class: not ours. The text colours are ours (black or white, the better contrast).
#
# Boundaries: the annex gives ranges such as 0-10, 10-20 for PM2.5, so a value on a
# bound is named by both rows. We read each row as "up to and including" its upper
# bound (10 is "bon", 10.1 is "moyen"), which is how we remember the arrêté and Atmo
# France's calculation guide; we are not certain of it, and the choice only matters
# for values exactly on a bound.
ATMO_2021 = AtmoRegulation(
    name="ATMO_2021",
    source="Arrêté du 10 juillet 2020 relatif à l'indice de la qualité de l'air ambiant",
    colours_source="Atmo France, guide de calcul de l'indice ATMO (2021), vérifié le 2026-12-04",
    classes=(
        AtmoClass(1, "bon", "#50F0E6", "#000000"),
        AtmoClass(2, "moyen", "#50CCAA", "#000000"),
        AtmoClass(3, "dégradé", "#F0E641", "#000000"),
        AtmoClass(4, "mauvais", "#FF5050", "#000000"),
        AtmoClass(5, "très mauvais", "#960032", "#FFFFFF"),
        AtmoClass(6, "extrêmement mauvais", "#872181", "#FFFFFF"),
    ),
    pollutants=MappingProxyType(
        {
            # The order is the tie-break when two pollutants give the worst class.
            "pm25": AtmoPollutant(Averaging.DAILY_MEAN, (10, 20, 25, 50, 75)),
            "pm10": AtmoPollutant(Averaging.DAILY_MEAN, (20, 40, 50, 100, 150)),
            "no2": AtmoPollutant(Averaging.MAX_HOURLY_MEAN, (40, 90, 120, 230, 340)),
            "o3": AtmoPollutant(Averaging.MAX_HOURLY_MEAN, (50, 100, 130, 240, 380)),
            "so2": AtmoPollutant(Averaging.MAX_HOURLY_MEAN, (100, 200, 350, 500, 750)),
        }
    ),
)


class EpisodeLevel(StrEnum):
    INFORMATION = "information"  # seuil d'information et de recommandation
    ALERT = "alerte"  # seuil d'alerte


@dataclass(frozen=True)
class EpisodeThreshold:
    """One threshold of the prefectoral episode procedures, in µg/m³, on the mean the
    text names (``aggregate``: a value of ``alerts.models.Aggregate``)."""

    pollutant: str  # the metric, as in sensors/metrics.py
    level: EpisodeLevel
    value: float
    aggregate: str
    consecutive_hours: int
    text: str  # the regulation's own words


@dataclass(frozen=True)
class EpisodeRegulation:
    name: str
    source: str
    thresholds: tuple[EpisodeThreshold, ...]

    def threshold(self, pollutant: str, level: EpisodeLevel) -> EpisodeThreshold:
        return next(t for t in self.thresholds if (t.pollutant, t.level) == (pollutant, level))


# Source: code de l'environnement, article R221-1, I, as written by décret n° 2010-1250 of
# 21 October 2010 relatif à la qualité de l'air (JORF of 23 October 2010), in force when
# checked on 2026-12-03. The values and the words below are the article's; when the
# article changes, add EPISODES_R221_1_<year> beside this one.
#
# Left out: the NO₂ alert "200 µg/m³ en moyenne horaire" when the information procedure
# was set off the day before and the same day and the forecast fears it again for the
# next day (a forecast, not a measure); O₃'s further alert steps for progressive
# emergency measures (240 over 3 hours, 300 over 3 hours, 360), which the préfet applies.
# PM10 "en moyenne journalière": the ministerial arrêté on the triggering procedures
# lets the AASQA use a sliding 24-hour mean; a rule says which (``daily_window``).
EPISODES_R221_1 = EpisodeRegulation(
    name="EPISODES_R221_1",
    source="Code de l'environnement, article R221-1 (décret n° 2010-1250 du 21 octobre 2010)",
    thresholds=(
        EpisodeThreshold(
            "pm10",
            EpisodeLevel.INFORMATION,
            50,
            "daily",
            1,
            "Seuil d'information et de recommandation : 50 µg/m³ en moyenne journalière",
        ),
        EpisodeThreshold(
            "pm10",
            EpisodeLevel.ALERT,
            80,
            "daily",
            1,
            "Seuil d'alerte : 80 µg/m³ en moyenne journalière",
        ),
        EpisodeThreshold(
            "no2",
            EpisodeLevel.INFORMATION,
            200,
            "hourly",
            1,
            "Seuil d'information et de recommandation : 200 µg/m³ en moyenne horaire",
        ),
        EpisodeThreshold(
            "no2",
            EpisodeLevel.ALERT,
            400,
            "hourly",
            3,
            "Seuil d'alerte : 400 µg/m³ en moyenne horaire, dépassé pendant trois heures "
            "consécutives",
        ),
        EpisodeThreshold(
            "o3",
            EpisodeLevel.INFORMATION,
            180,
            "hourly",
            1,
            "Seuil d'information et de recommandation : 180 µg/m³ en moyenne horaire",
        ),
        EpisodeThreshold(
            "o3",
            EpisodeLevel.ALERT,
            240,
            "hourly",
            1,
            "Seuil d'alerte pour une protection sanitaire pour toute la population : "
            "240 µg/m³ en moyenne horaire",
        ),
        EpisodeThreshold(
            "so2",
            EpisodeLevel.INFORMATION,
            300,
            "hourly",
            1,
            "Seuil d'information et de recommandation : 300 µg/m³ en moyenne horaire",
        ),
        EpisodeThreshold(
            "so2",
            EpisodeLevel.ALERT,
            500,
            "hourly",
            3,
            "Seuil d'alerte : 500 µg/m³ en moyenne horaire, dépassé pendant trois heures "
            "consécutives",
        ),
    ),
)


class WaterBasis(StrEnum):
    LIMIT = "limite de qualité"  # over it: the water is not fit, the ARS acts
    REFERENCE = "référence de qualité"  # an indicator of the treatment: over it, look
    VIGIPIRATE = "consigne Vigipirate"  # not the arrêté: the plan's instruction


# The water points (``sensors.models.WaterPoint``) where water is drinking water.
OUTLET, NETWORK, TAP = "outlet", "network", "tap"
DISTRIBUTED = frozenset({OUTLET, NETWORK, TAP})


@dataclass(frozen=True)
class WaterCriterion:
    metric: str
    basis: WaterBasis
    minimum: float | None
    maximum: float | None
    points: frozenset[str]  # where it applies
    text: str  # the regulation's words, shortened

    def allows(self, value: float) -> bool:
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )


# Source: arrêté du 11 janvier 2007 relatif aux limites et références de qualité des eaux
# brutes et des eaux destinées à la consommation humaine (code de la santé publique,
# articles R1321-2, R1321-3, R1321-7 and R1321-38), annex I: I, limites de qualité; II,
# références de qualité. Checked on 2026-12-03. Conformity is the ARS's judgement: the CSU
# says "dans les références" or "hors références", never "conforme". Raw water (annex II)
# and bathing water (directive 2006/7/EC) have other criteria, not judged here.
#
# Free chlorine is not a numeric criterion of the arrêté (a reference asks only for no
# unusual taste or odour): 0.3 mg/L leaving reservoirs and 0.1 mg/L everywhere in the
# network are the Vigipirate plan's instruction, kept here so that they are said so.
DRINKING_WATER_2007 = (
    WaterCriterion(
        "nitrates", WaterBasis.LIMIT, None, 50, DISTRIBUTED, "Nitrates : 50 mg/L (limite)"
    ),
    WaterCriterion(
        "turbidity",
        WaterBasis.LIMIT,
        None,
        1,
        frozenset({OUTLET}),
        "Turbidité : 1 NFU au point de mise en distribution, eaux d'origine superficielle (limite)",
    ),
    WaterCriterion(
        "turbidity",
        WaterBasis.REFERENCE,
        None,
        0.5,
        frozenset({OUTLET}),
        "Turbidité : 0,5 NFU au point de mise en distribution (référence)",
    ),
    WaterCriterion(
        "turbidity",
        WaterBasis.REFERENCE,
        None,
        2,
        frozenset({TAP}),
        "Turbidité : 2 NFU aux robinets normalement utilisés pour la consommation (référence)",
    ),
    WaterCriterion(
        "ph", WaterBasis.REFERENCE, 6.5, 9, DISTRIBUTED, "pH : ≥ 6,5 et ≤ 9 (référence)"
    ),
    WaterCriterion(
        "conductivity",
        WaterBasis.REFERENCE,
        180,
        1000,
        DISTRIBUTED,
        "Conductivité : ≥ 180 et ≤ 1 000 µS/cm à 20 °C (référence)",
    ),
    WaterCriterion(
        "chlorine",
        WaterBasis.VIGIPIRATE,
        0.3,
        None,
        frozenset({OUTLET}),
        "Chlore libre : ≥ 0,3 mg/L en sortie de réservoir (plan Vigipirate, pas l'arrêté)",
    ),
    WaterCriterion(
        "chlorine",
        WaterBasis.VIGIPIRATE,
        0.1,
        None,
        DISTRIBUTED,
        "Chlore libre : ≥ 0,1 mg/L en tout point du réseau (plan Vigipirate, pas l'arrêté)",
    ),
)


def water_criteria(point: str) -> tuple[WaterCriterion, ...]:
    """The criteria that apply at a water point (none where it is not drinking water)."""
    return tuple(c for c in DRINKING_WATER_2007 if point in c.points)
