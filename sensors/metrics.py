"""The canonical metric registry, in one place (docs/mqtt.md lists it).

Each kind of sensor has its metrics, each with a unit and a physically valid range;
values outside the range are rejected, not stored. ``battery`` is valid for any kind.
"""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.numbers import french_number


class Kind(models.TextChoices):
    AIR = "air", _("Qualité de l'air")
    WATER = "water", _("Eau")
    WATERING = "watering", _("Arrosage")
    TRAFFIC = "traffic", _("Trafic")
    OPENING = "opening", _("Ouvertures")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    minimum: float
    maximum: float
    label: str
    # State metrics take only their bounds (0 or 1); booleans count as 1/0.
    is_state: bool = False
    # Other spellings of the unit a SenML record may carry; units that differ are
    # converted when sensors/units.py knows both, and rejected otherwise.
    unit_aliases: tuple[str, ...] = ()
    # Decimals shown to people (tiles, charts, alert titles).
    digits: int = 1

    def display(self, value: float) -> str:
        """The value for French readers, rounded, with its unit: "4,58 m" (core/numbers.py)."""
        return french_number(value, self.digits, "" if self.is_state else self.unit)

    def accepts_unit(self, unit: str) -> bool:
        return unit == self.unit or unit in self.unit_aliases

    def in_range(self, value: float) -> bool:
        if self.is_state:
            return value in (self.minimum, self.maximum)
        return self.minimum <= value <= self.maximum


_UG = ("µg/m³", ("ug/m3", "µg/m3", "ug/m³"))


def _pollutant(name: str, label: str) -> Metric:
    return Metric(name, _UG[0], 0, 2000, label, unit_aliases=_UG[1], digits=0)


BATTERY = Metric("battery", "%", 0, 100, "Batterie", unit_aliases=("%EL",), digits=0)

REGISTRY: dict[str, dict[str, Metric]] = {
    Kind.AIR: {
        m.name: m
        for m in (
            _pollutant("pm25", "PM2,5"),
            _pollutant("pm10", "PM10"),
            _pollutant("no2", "NO₂"),
            _pollutant("o3", "O₃"),
            _pollutant("so2", "SO₂"),
            Metric("temperature", "°C", -50, 70, "Température", unit_aliases=("Cel", "degC")),
            Metric("humidity", "%", 0, 100, "Humidité", unit_aliases=("%RH",)),
        )
    },
    Kind.WATER: {
        m.name: m
        for m in (
            Metric("ph", "pH", 0, 14, "pH", digits=2),
            Metric("turbidity", "NTU", 0, 4000, "Turbidité", unit_aliases=("NFU",), digits=2),
            Metric("chlorine", "mg/L", 0, 20, "Chlore libre", unit_aliases=("mg/l",), digits=2),
            Metric(
                "conductivity", "µS/cm", 0, 20000, "Conductivité", unit_aliases=("uS/cm",), digits=0
            ),
            Metric("nitrates", "mg/L", 0, 1000, "Nitrates", unit_aliases=("mg/l",), digits=1),
            Metric("level", "m", -10, 100, "Niveau", digits=2),
            Metric("temperature", "°C", -10, 60, "Température", unit_aliases=("Cel", "degC")),
        )
    },
    Kind.WATERING: {
        m.name: m
        for m in (
            Metric("flow", "L/min", 0, 10000, "Débit", unit_aliases=("l/min",), digits=0),
            Metric("valve", "state", 0, 1, "Vanne", is_state=True, digits=0),
            Metric("soil_moisture", "%", 0, 100, "Humidité du sol"),
        )
    },
    Kind.TRAFFIC: {
        m.name: m
        for m in (
            Metric("vehicle_count", "vehicles", 0, 100000, "Véhicules", digits=0),
            Metric("speed", "km/h", 0, 250, "Vitesse", unit_aliases=("km/hr",), digits=0),
            Metric("occupancy", "%", 0, 100, "Taux d'occupation"),
        )
    },
    Kind.OPENING: {
        m.name: m for m in (Metric("open", "state", 0, 1, "Ouvert", is_state=True, digits=0),)
    },
}


def metric_for(kind: str, name: str) -> Metric | None:
    """Return the registered metric ``name`` for sensors of ``kind``, or None."""
    if name == BATTERY.name:
        return BATTERY
    return REGISTRY.get(kind, {}).get(name)


def display(kind: str, name: str, value: float) -> str:
    """A value of metric ``name`` of a sensor of ``kind`` for French readers, with its unit
    when the metric is known (core/numbers.py)."""
    metric = metric_for(kind, name) if name else None
    return metric.display(value) if metric else french_number(value)


def metrics_of(kind: str) -> list[Metric]:
    return [*REGISTRY.get(kind, {}).values(), BATTERY]
