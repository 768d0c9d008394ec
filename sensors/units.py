"""Convert a reading from the unit a device sent to its metric's unit (docs/mqtt.md).

pint does the arithmetic; this module only says which spellings a device may send and
what pint calls them. Every conversion between these units is affine, so a converter is
two numbers measured once through pint per (from, to) pair and then cached: a reading in
another unit costs a multiplication and an addition, and pint is loaded only when a
device first sends one. Readings already in their metric's unit never come here.
"""

from functools import cache

# A unit as a device may spell it (SenML's registered symbols, RFC 8428 section 12.1,
# and common ASCII spellings) -> pint's name for it. Percentages are left out on
# purpose: "%RH" and "%EL" are the same number as "%" but not the same quantity, so
# each metric lists the ones it accepts as aliases (sensors/metrics.py).
PINT_UNITS: dict[str, str] = {
    # Temperature
    "°C": "degC",
    "Cel": "degC",
    "degC": "degC",
    "K": "kelvin",
    "°F": "degF",
    "degF": "degF",
    # Mass concentration in air
    "µg/m³": "microgram / meter ** 3",
    "µg/m3": "microgram / meter ** 3",
    "ug/m3": "microgram / meter ** 3",
    "ug/m³": "microgram / meter ** 3",
    "mg/m3": "milligram / meter ** 3",
    "kg/m3": "kilogram / meter ** 3",
    # Mass concentration in water
    "mg/L": "milligram / liter",
    "mg/l": "milligram / liter",
    "g/l": "gram / liter",
    # Conductivity
    "µS/cm": "microsiemens / centimeter",
    "uS/cm": "microsiemens / centimeter",
    "mS/cm": "millisiemens / centimeter",
    "S/m": "siemens / meter",
    # Flow
    "L/min": "liter / minute",
    "l/min": "liter / minute",
    "l/s": "liter / second",
    "m3/s": "meter ** 3 / second",
    "m3/h": "meter ** 3 / hour",
    # Length
    "m": "meter",
    "cm": "centimeter",
    "mm": "millimeter",
    # Speed
    "km/h": "kilometer / hour",
    "km/hr": "kilometer / hour",
    "m/s": "meter / second",
}


def converter(source: str, target: str) -> tuple[float, float] | None:
    """Return (scale, offset) turning a value in ``source`` into ``target``, or None."""
    if source not in PINT_UNITS or target not in PINT_UNITS:
        return None  # kept out of the cache: a device may send any string
    return pair_converter(source, target)


@cache  # at most len(PINT_UNITS) ** 2 pairs
def pair_converter(source: str, target: str) -> tuple[float, float] | None:
    """Measure the conversion between two units of the table through pint."""
    import pint  # half a second to load: on the first conversion only

    registry = _registry()
    try:
        zero = registry.Quantity(0.0, PINT_UNITS[source]).to(PINT_UNITS[target]).magnitude
        one = registry.Quantity(1.0, PINT_UNITS[source]).to(PINT_UNITS[target]).magnitude
    except pint.DimensionalityError:
        return None
    return float(one - zero), float(zero)


def convert(value: float, scale_offset: tuple[float, float]) -> float:
    """Apply a converter, to 12 significant digits: 293.15 K is 20 °C, not 19.999999999999977."""
    scale, offset = scale_offset
    return float(f"{value * scale + offset:.12g}")


@cache
def _registry():
    import pint

    return pint.UnitRegistry()
