"""Seed a demo town: Joué-lès-Tours and two neighbours, with sensors, schools and users.

Every row is keyed on its natural key (INSEE code, zone name, sensor ref, UAI, shelter
name, username), so running the command again updates the same rows and adds none.
"""

import secrets
from datetime import time, timedelta
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp import user_has_device

from alerts.models import Rule
from alerts.regulations import EPISODES_R221_1, EpisodeLevel, EpisodeThreshold
from core import twofactor
from core.roles import ADMINS, AUTHORITIES, DIRECTORS, OPERATORS
from ppms.models import (
    DirectoryEntry,
    DirectoryRole,
    PpmsPlan,
    RuleTrigger,
    Scenario,
    School,
    Shelter,
)
from sensors.metrics import Kind
from sensors.models import Commune, Operator, Sensor, StationType, WaterPoint, Zone

# --- Communes ---------------------------------------------------------------------------

JLT, BAL, SAV = "37122", "37018", "37208"
MAIN_COMMUNE = JLT

# INSEE code, name, postcode
COMMUNES = (
    (JLT, "Joué-lès-Tours", "37300"),
    (BAL, "Ballan-Miré", "37510"),
    (SAV, "Saint-Avertin", "37550"),
)

# --- Zones (GeoJSON is lon, lat) --------------------------------------------------------


def _rect(west: float, south: float, east: float, north: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [
            [[west, south], [east, south], [east, north], [west, north], [west, south]]
        ],
    }


def _polygon(*ring: tuple[float, float]) -> dict:
    return {"type": "Polygon", "coordinates": [[list(point) for point in (*ring, ring[0])]]}


CENTRE = "Centre"
RABIERE = "La Rabière"
MORIER = "Morier"
ALOUETTES = "Les Alouettes"
VALLEE = "Vallée du Cher"
FLOOD = "Zone inondable du Cher"
RIVERSIDE = (VALLEE, FLOOD)
SEVESO = "Périmètre SEVESO ZI Joué Sud"
BOURG = "Centre-bourg"

# (commune, name, type, geometry); a zone's name is unique within its commune.

ZONES = (
    (JLT, CENTRE, Zone.Type.DISTRICT, _rect(0.652, 47.343, 0.672, 47.362)),
    (JLT, RABIERE, Zone.Type.DISTRICT, _rect(0.672, 47.335, 0.705, 47.350)),
    (JLT, MORIER, Zone.Type.DISTRICT, _rect(0.672, 47.350, 0.705, 47.362)),
    (JLT, ALOUETTES, Zone.Type.DISTRICT, _rect(0.625, 47.340, 0.652, 47.362)),
    (JLT, VALLEE, Zone.Type.DISTRICT, _rect(0.625, 47.362, 0.705, 47.372)),
    # The Cher runs west along the north of the town, at about lat 47.368.
    (
        JLT,
        FLOOD,
        Zone.Type.FLOOD,
        _polygon(
            (0.625, 47.3625),
            (0.645, 47.3605),
            (0.665, 47.3610),
            (0.685, 47.3620),
            (0.705, 47.3635),
            (0.705, 47.3720),
            (0.685, 47.3715),
            (0.665, 47.3705),
            (0.645, 47.3700),
            (0.625, 47.3710),
        ),
    ),
    (JLT, SEVESO, Zone.Type.SEVESO, _rect(0.650, 47.326, 0.675, 47.336)),
    (BAL, BOURG, Zone.Type.DISTRICT, _rect(0.600, 47.330, 0.625, 47.350)),
    (
        BAL,
        FLOOD,
        Zone.Type.FLOOD,
        _polygon((0.590, 47.3560), (0.625, 47.3540), (0.625, 47.3640), (0.590, 47.3650)),
    ),
    (SAV, CENTRE, Zone.Type.DISTRICT, _rect(0.715, 47.352, 0.745, 47.364)),
    (
        SAV,
        FLOOD,
        Zone.Type.FLOOD,
        _polygon((0.705, 47.3640), (0.750, 47.3645), (0.750, 47.3750), (0.705, 47.3730)),
    ),
)

# --- Sensors ----------------------------------------------------------------------------


class SensorSpec(NamedTuple):
    commune: str
    ref: str
    name: str
    zones: tuple[str, ...]
    lat: float
    lon: float
    building: str = ""


S = SensorSpec  # short, so that each sensor fits on one line


def door(commune, ref, building, zones, lat, lon) -> SensorSpec:
    """Describe the sensor on the main door of ``building``."""
    return SensorSpec(commune, ref, f"Porte - {building}", zones, lat, lon, building)


EXPECTED_INTERVAL = {
    Kind.AIR: 60,
    Kind.WATER: 300,
    Kind.WATERING: 600,
    Kind.TRAFFIC: 60,
    Kind.OPENING: 300,
}

# The ATMO index is estimated on background stations only: the demo's roadside stations
# (boulevard, avenue, street, roundabout, motorway junction) are trafic, the industrial
# zone's is industrial.
STATION_TYPES = {
    **dict.fromkeys(
        ["jlt-air-01", "jlt-air-04", "jlt-air-07", "jlt-air-08", "bal-air-01", "sav-air-01"],
        StationType.BACKGROUND,
    ),
    **dict.fromkeys(
        ["jlt-air-02", "jlt-air-03", "jlt-air-05", "jlt-air-06", "jlt-air-10"],
        StationType.TRAFFIC,
    ),
    "jlt-air-09": StationType.INDUSTRIAL,
}

# Where each water probe measures (the arrêté of 11 January 2007 applies to drinking water
# only): the lake is a bathing water, the pumping station takes raw water from the Cher.
WATER_POINTS = {
    "jlt-water-01": WaterPoint.OUTLET,
    "jlt-water-02": WaterPoint.OUTLET,
    "jlt-water-03": WaterPoint.NETWORK,
    "jlt-water-04": WaterPoint.NETWORK,
    "jlt-water-05": WaterPoint.BATHING,
    "jlt-water-06": WaterPoint.RESOURCE,
    "bal-water-01": WaterPoint.NETWORK,
    "sav-water-01": WaterPoint.NETWORK,
}

SENSORS: dict[str, tuple[SensorSpec, ...]] = {
    Kind.AIR: (
        S(JLT, "jlt-air-01", "Air - Hôtel de ville", (CENTRE,), 47.3519, 0.6634),
        S(JLT, "jlt-air-02", "Air - boulevard Jean Jaurès", (CENTRE,), 47.3540, 0.6585),
        S(JLT, "jlt-air-03", "Air - avenue du Lac", (RABIERE,), 47.3455, 0.6840),
        S(JLT, "jlt-air-04", "Air - lac des Bretonnières", (RABIERE,), 47.3430, 0.6800),
        S(JLT, "jlt-air-05", "Air - rue de Chantepie", (MORIER,), 47.3570, 0.6850),
        S(JLT, "jlt-air-06", "Air - rond-point des Alouettes", (ALOUETTES,), 47.3500, 0.6400),
        S(JLT, "jlt-air-07", "Air - parc des Alouettes", (ALOUETTES,), 47.3560, 0.6450),
        S(JLT, "jlt-air-08", "Air - bords du Cher", RIVERSIDE, 47.3650, 0.6780),
        S(JLT, "jlt-air-09", "Air - ZI Joué Sud", (SEVESO,), 47.3300, 0.6600),
        S(JLT, "jlt-air-10", "Air - échangeur A10", (MORIER,), 47.3590, 0.6950),
        S(BAL, "bal-air-01", "Air - centre-bourg de Ballan-Miré", (BOURG,), 47.3394, 0.6136),
        S(SAV, "sav-air-01", "Air - centre de Saint-Avertin", (CENTRE,), 47.3600, 0.7300),
    ),
    Kind.WATER: (
        S(JLT, "jlt-river-01", "Niveau du Cher - amont", RIVERSIDE, 47.3680, 0.6950),
        S(JLT, "jlt-river-02", "Niveau du Cher - Morier", RIVERSIDE, 47.3685, 0.6750),
        S(JLT, "jlt-river-03", "Niveau du Cher - Vallée du Cher", RIVERSIDE, 47.3680, 0.6550),
        S(JLT, "jlt-river-04", "Niveau du Cher - aval", RIVERSIDE, 47.3670, 0.6350),
        S(JLT, "jlt-water-01", "Eau - réservoir de la Rabière", (RABIERE,), 47.3420, 0.6880),
        S(JLT, "jlt-water-02", "Eau - château d'eau de Morier", (MORIER,), 47.3560, 0.6900),
        S(JLT, "jlt-water-03", "Eau - réseau du centre", (CENTRE,), 47.3510, 0.6580),
        S(JLT, "jlt-water-04", "Eau - réseau des Alouettes", (ALOUETTES,), 47.3480, 0.6380),
        S(JLT, "jlt-water-05", "Eau - lac des Bretonnières", (RABIERE,), 47.3435, 0.6810),
        S(JLT, "jlt-water-06", "Eau - station de pompage du Cher", RIVERSIDE, 47.3650, 0.6600),
        S(BAL, "bal-water-01", "Eau - réseau de Ballan-Miré", (BOURG,), 47.3420, 0.6080),
        S(SAV, "sav-water-01", "Eau - réseau de Saint-Avertin", (CENTRE,), 47.3560, 0.7350),
    ),
    Kind.WATERING: (
        S(JLT, "jlt-watering-01", "Arrosage - jardin de la mairie", (CENTRE,), 47.3525, 0.6640),
        S(JLT, "jlt-watering-02", "Arrosage - parc de la Rabière", (RABIERE,), 47.3460, 0.6760),
        S(JLT, "jlt-watering-03", "Arrosage - pelouses du lac", (RABIERE,), 47.3425, 0.6790),
        S(JLT, "jlt-watering-04", "Arrosage - stade Jean Bigot", (CENTRE,), 47.3485, 0.6700),
        S(JLT, "jlt-watering-05", "Arrosage - square des Alouettes", (ALOUETTES,), 47.3530, 0.6420),
        S(JLT, "jlt-watering-06", "Arrosage - rond-point de Morier", (MORIER,), 47.3580, 0.6780),
        S(JLT, "jlt-watering-07", "Arrosage - coulée verte du Cher", RIVERSIDE, 47.3660, 0.6450),
        S(JLT, "jlt-watering-08", "Arrosage - terrains du Cher", RIVERSIDE, 47.3655, 0.6850),
        S(JLT, "jlt-watering-09", "Arrosage - cimetière", (CENTRE,), 47.3470, 0.6600),
        S(JLT, "jlt-watering-10", "Arrosage - parc de Morier", (MORIER,), 47.3550, 0.6800),
        S(BAL, "bal-watering-01", "Arrosage - stade de Ballan-Miré", (BOURG,), 47.3370, 0.6100),
        S(SAV, "sav-watering-01", "Arrosage - parc de Saint-Avertin", (CENTRE,), 47.3590, 0.7350),
    ),
    Kind.TRAFFIC: (
        S(JLT, "jlt-traffic-01", "Trafic - avenue de la République", (CENTRE,), 47.3530, 0.6620),
        S(JLT, "jlt-traffic-02", "Trafic - rue Aristide Briand", (CENTRE,), 47.3505, 0.6650),
        S(JLT, "jlt-traffic-03", "Trafic - boulevard Jean Jaurès", (CENTRE,), 47.3545, 0.6590),
        S(JLT, "jlt-traffic-04", "Trafic - rue de Chantepie", (MORIER,), 47.3575, 0.6880),
        S(JLT, "jlt-traffic-05", "Trafic - avenue du Lac", (RABIERE,), 47.3440, 0.6830),
        S(JLT, "jlt-traffic-06", "Trafic - rue de la Rabière", (RABIERE,), 47.3470, 0.6740),
        S(JLT, "jlt-traffic-07", "Trafic - rue des Alouettes", (ALOUETTES,), 47.3515, 0.6430),
        S(JLT, "jlt-traffic-08", "Trafic - pont sur le Cher", RIVERSIDE, 47.3660, 0.6620),
        S(JLT, "jlt-traffic-09", "Trafic - échangeur A10", (MORIER,), 47.3600, 0.7000),
        S(JLT, "jlt-traffic-10", "Trafic - ZI Joué Sud", (SEVESO,), 47.3310, 0.6620),
        S(BAL, "bal-traffic-01", "Trafic - RD 751 Ballan-Miré", (BOURG,), 47.3450, 0.6180),
        S(SAV, "sav-traffic-01", "Trafic - pont de Saint-Avertin", (FLOOD,), 47.3680, 0.7250),
    ),
    Kind.OPENING: (
        door(JLT, "jlt-opening-01", "Mairie", (CENTRE,), 47.3519, 0.6632),
        door(JLT, "jlt-opening-02", "Gymnase Jean Bigot", (CENTRE,), 47.3490, 0.6705),
        door(JLT, "jlt-opening-03", "École élémentaire Mairie", (CENTRE,), 47.3527, 0.6648),
        door(JLT, "jlt-opening-04", "Groupe scolaire Rabière", (RABIERE,), 47.3448, 0.6795),
        door(JLT, "jlt-opening-05", "Espace Malraux", (CENTRE,), 47.3505, 0.6615),
        door(JLT, "jlt-opening-06", "École maternelle Alouettes", (ALOUETTES,), 47.3545, 0.6440),
        door(JLT, "jlt-opening-07", "Complexe sportif de la Rabière", (RABIERE,), 47.3450, 0.6770),
        door(JLT, "jlt-opening-08", "Centre technique municipal", (SEVESO,), 47.3320, 0.6640),
        door(JLT, "jlt-opening-09", "Médiathèque", (CENTRE,), 47.3535, 0.6610),
        door(JLT, "jlt-opening-10", "École élémentaire Grand Pré", RIVERSIDE, 47.3652, 0.6422),
        door(BAL, "bal-opening-01", "Mairie de Ballan-Miré", (BOURG,), 47.3398, 0.6128),
        door(SAV, "sav-opening-01", "Mairie de Saint-Avertin", (CENTRE,), 47.3625, 0.7280),
    ),
}

# --- Schools and shelters ---------------------------------------------------------------


class SchoolSpec(NamedTuple):
    commune: str
    uai: str
    name: str
    street: str
    zones: tuple[str, ...]
    lat: float
    lon: float
    pupils: int
    staff: int


E = SchoolSpec  # short, so that each school fits on two lines

# fmt: off
SCHOOLS = (
    E(JLT, "0370851Z", "École maternelle Mairie", "rue de la Mairie",
      (CENTRE,), 47.3530, 0.6655, 140, 11),
    E(JLT, "0371575L", "École élémentaire Mairie", "rue de la Mairie",
      (CENTRE,), 47.3527, 0.6648, 290, 18),
    E(JLT, "0371628U", "École élémentaire Jean Moulin", "rue Jean Moulin",
      (CENTRE,), 47.3480, 0.6570, 260, 16),
    E(JLT, "0371847G", "École maternelle Blotterie", "rue de la Blotterie",
      (CENTRE,), 47.3460, 0.6680, 125, 10),
    E(JLT, "0372136W", "École maternelle Alouettes", "rue des Alouettes",
      (ALOUETTES,), 47.3545, 0.6440, 130, 10),
    E(JLT, "0372144E", "École élémentaire Alouettes", "rue des Alouettes",
      (ALOUETTES,), 47.3550, 0.6450, 220, 14),
    E(JLT, "0372492H", "École élémentaire Vallée Violette", "rue de la Vallée Violette",
      (ALOUETTES,), 47.3430, 0.6350, 205, 13),
    E(JLT, "0372634M", "Groupe scolaire Rabière", "rue de la Rabière",
      (RABIERE,), 47.3448, 0.6795, 400, 27),
    E(JLT, "0372757W", "École maternelle Liget", "rue du Liget",
      (RABIERE,), 47.3400, 0.6900, 120, 10),
    E(JLT, "0372880E", "École élémentaire Liget", "rue du Liget",
      (RABIERE,), 47.3395, 0.6910, 215, 14),
    E(JLT, "0372895W", "École maternelle Morier", "rue de Morier",
      (MORIER,), 47.3565, 0.6760, 125, 10),
    E(JLT, "0372937S", "École élémentaire Morier", "rue de Morier",
      (MORIER,), 47.3570, 0.6770, 250, 16),
    E(JLT, "0372967Z", "École élémentaire Beaulieu", "allée de Beaulieu",
      (MORIER,), 47.3530, 0.6980, 225, 14),
    # Five schools stand in the Cher's flood zone.
    E(JLT, "0372977K", "École maternelle Grand Pré", "rue du Grand Pré",
      RIVERSIDE, 47.3655, 0.6415, 110, 9),
    E(JLT, "0373074R", "École élémentaire Grand Pré", "rue du Grand Pré",
      RIVERSIDE, 47.3652, 0.6422, 210, 13),
    E(JLT, "0373186M", "Groupe scolaire Bords du Cher", "quai du Cher",
      RIVERSIDE, 47.3665, 0.6620, 290, 20),
    E(JLT, "0373277L", "École maternelle Gitonnière", "rue de la Gitonnière",
      RIVERSIDE, 47.3660, 0.6880, 105, 9),
    E(JLT, "0373318F", "École élémentaire Gitonnière", "rue de la Gitonnière",
      RIVERSIDE, 47.3665, 0.6895, 195, 13),
    E(BAL, "0373816X", "École élémentaire Jean de La Fontaine", "rue de la Mairie",
      (BOURG,), 47.3380, 0.6160, 210, 13),
    E(SAV, "0373916F", "École élémentaire Camille Claudel", "rue du Cher",
      (FLOOD,), 47.3665, 0.7300, 190, 12),
    E(SAV, "0373997U", "École maternelle Les Onze Arpents", "rue des Onze Arpents",
      (CENTRE,), 47.3570, 0.7220, 115, 9),
)
# fmt: on

# Centres d'accueil of the main town, out of the flood zone: (name, street, lat, lon, capacity).
SHELTERS = (
    ("Gymnase Jean Bigot", "rue Jean Bigot", 47.3490, 0.6705, 300),
    ("Complexe sportif de la Rabière", "rue de la Rabière", 47.3450, 0.6770, 500),
    ("Espace Malraux", "parvis Raymond Lory", 47.3505, 0.6615, 800),
)

# Each demo school's plan, one per posture (%(street)s: the school's street). A town's
# schools write their own; these show what the director's page shows.
PLANS = {
    Scenario.SHELTER: {
        "sheltering_places": "Salles de classe du rez-de-chaussée, côté cour\nSalle de motricité",
        "assembly_point": "",
        "instructions": "Faire rentrer les élèves de la cour, fermer portes et fenêtres, "
        "faire l'appel, écouter la radio locale (France Bleu Touraine).",
    },
    Scenario.CONFINEMENT: {
        "sheltering_places": "Salle de motricité (porte et aérations calfeutrées)\nBibliothèque",
        "assembly_point": "",
        "instructions": "Couper la ventilation et le chauffage, calfeutrer portes et aérations "
        "avec le ruban adhésif et les linges de la mallette PPMS, faire l'appel.",
    },
    Scenario.EVACUATION: {
        "sheltering_places": "",
        "assembly_point": "Parking du stade, au bout de la %(street)s",
        "instructions": "Sortie par le portail de la %(street)s, les classes en file, "
        "chaque enseignant avec sa liste d'appel et la mallette PPMS.",
    },
    Scenario.INTRUSION: {
        "sheltering_places": "Classes fermables à clé de l'étage\nBureau de la direction",
        "assembly_point": "",
        "instructions": "S'échapper par le portail arrière si c'est sans danger ; sinon "
        "s'enfermer, éteindre, s'éloigner des portes, téléphones en silencieux. "
        "Alerter le 17 ou le 114 par SMS.",
    },
}

OPERATOR_USERNAME = "operateur"
AUTHORITY_USERNAME = "autorite"
METROPOLE_OPERATOR_USERNAME = "operateur-metropole"
ADMIN_USERNAME = "admin"


def director_username(uai: str) -> str:
    return f"directeur-{uai.lower()}"


# --- Seeding ----------------------------------------------------------------------------


def address(street: str, insee: str) -> str:
    _, name, postcode = next(row for row in COMMUNES if row[0] == insee)
    return f"{street}, {postcode} {name}"


def seed_communes() -> dict[str, Commune]:
    return {
        insee: Commune.objects.update_or_create(insee_code=insee, defaults={"name": name})[0]
        for insee, name, _ in COMMUNES
    }


def seed_zones(communes: dict[str, Commune]) -> dict[tuple[str, str], Zone]:
    return {
        (insee, name): Zone.objects.update_or_create(
            commune=communes[insee], name=name, defaults={"type": type_, "geometry": geometry}
        )[0]
        for insee, name, type_, geometry in ZONES
    }


def seed_sensors(communes, zones) -> list[Sensor]:
    sensors = []
    for kind, specs in SENSORS.items():
        for spec in specs:
            defaults = {
                "name": spec.name,
                "kind": kind,
                "commune": communes[spec.commune],
                "latitude": spec.lat,
                "longitude": spec.lon,
                "building": spec.building,
                "expected_interval": EXPECTED_INTERVAL[kind],
                "station_type": STATION_TYPES.get(spec.ref, ""),
                "water_point": WATER_POINTS.get(spec.ref, ""),
            }
            # Whether a sensor is active is the admins' call once it exists.
            sensor, _ = Sensor.objects.update_or_create(
                ref=spec.ref, defaults=defaults, create_defaults={**defaults, "active": True}
            )
            sensor.zones.set([zones[spec.commune, name] for name in spec.zones])
            sensors.append(sensor)
    return sensors


def seed_schools(communes, zones) -> list[School]:
    schools = []
    for number, spec in enumerate(SCHOOLS, 1):
        school, _ = School.objects.update_or_create(
            uai=spec.uai,
            defaults={
                "name": spec.name,
                "address": address(spec.street, spec.commune),
                "commune": communes[spec.commune],
                "latitude": spec.lat,
                "longitude": spec.lon,
                "pupils": spec.pupils,
                "staff": spec.staff,
                # ARCEP's numbers kept for fiction (02 61 91 xx xx): no one real is called.
                "crisis_phones": f"02 61 91 {number:02d} 00",
            },
        )
        school.zones.set([zones[spec.commune, name] for name in spec.zones])
        seed_directory(school, number, commune_number=list(communes).index(spec.commune) + 1)
        for scenario, plan in PLANS.items():
            PpmsPlan.objects.update_or_create(
                school=school,
                scenario=scenario,
                defaults={key: text % {"street": spec.street} for key, text in plan.items()},
            )
        schools.append(school)
    return schools


def seed_directory(school: School, number: int, *, commune_number: int) -> None:
    """The school's crisis directory, as the circular asks: roles and numbers, no names
    (ARCEP's numbers kept for fiction: 02 61 91 xx xx)."""
    phones = {
        DirectoryRole.SCHOOL: f"02 61 91 {number:02d} 00",
        DirectoryRole.DIRECTOR: f"02 61 91 {number:02d} 01",
        DirectoryRole.DEPUTY: f"02 61 91 {number:02d} 02",
        DirectoryRole.IEN: f"02 61 91 9{commune_number} 10",
        DirectoryRole.TOWN_ON_CALL: f"02 61 91 9{commune_number} 20",
    }
    for role, phone in phones.items():
        DirectoryEntry.objects.update_or_create(school=school, role=role, defaults={"phone": phone})


def seed_shelters(communes) -> list[Shelter]:
    shelters = []
    for name, street, lat, lon, capacity in SHELTERS:
        defaults = {
            "address": address(street, MAIN_COMMUNE),
            "latitude": lat,
            "longitude": lon,
            "capacity": capacity,
        }
        # Opening and occupancy are live state: set them once, never reset them.
        shelter, _ = Shelter.objects.update_or_create(
            commune=communes[MAIN_COMMUNE],
            name=name,
            defaults=defaults,
            create_defaults={**defaults, "is_open": False, "occupancy": 0},
        )
        shelters.append(shelter)
    return shelters


def seed_user(username: str, *, group: Group, password: str | None, **fields):
    """Create or update a demo user; return it with the password set now, or None."""
    user, created = get_user_model().objects.update_or_create(username=username, defaults=fields)
    new_password = None
    if created or password:
        new_password = password or secrets.token_urlsafe(12)
        user.set_password(new_password)
        user.save(update_fields=["password"])
    user.groups.add(group)
    return user, new_password


def seed_app_keys(users) -> list[tuple[str, str | None]]:
    """Give the demo users whose role requires a second factor an authenticator app, with
    a new key when their password is set now; return (username, key set or None) rows."""
    keys = []
    for username, _, new_password in users:
        user = get_user_model().objects.get(username=username)
        if not twofactor.requires_second_factor(user):
            continue
        key = None
        if new_password is not None or not user_has_device(user):
            twofactor.second_factor_reset(user=user)
            device = twofactor.new_device(user)
            device.save()
            key = twofactor.readable_secret(device)
        keys.append((username, key))
    return keys


def seed_users(communes, schools, *, password: str | None) -> list[tuple[str, str, str | None]]:
    """Create the demo accounts; return (username, role, password set or None) rows."""
    groups = {
        name: Group.objects.get_or_create(name=name)[0]
        for name in (OPERATORS, AUTHORITIES, DIRECTORS, ADMINS)
    }
    rows = []

    user, new_password = seed_user(OPERATOR_USERNAME, group=groups[OPERATORS], password=password)
    operator, _ = Operator.objects.update_or_create(user=user, defaults={"all_communes": False})
    operator.communes.set([communes[MAIN_COMMUNE]])
    rows.append((user.username, f"operator ({communes[MAIN_COMMUNE].name})", new_password))

    # The mayor: an operator of the main town who also validates its PPMS activations.
    user, new_password = seed_user(AUTHORITY_USERNAME, group=groups[OPERATORS], password=password)
    user.groups.add(groups[AUTHORITIES])
    operator, _ = Operator.objects.update_or_create(user=user, defaults={"all_communes": False})
    operator.communes.set([communes[MAIN_COMMUNE]])
    rows.append((user.username, f"authority ({communes[MAIN_COMMUNE].name})", new_password))

    user, new_password = seed_user(
        METROPOLE_OPERATOR_USERNAME, group=groups[OPERATORS], password=password
    )
    Operator.objects.update_or_create(user=user, defaults={"all_communes": True})
    rows.append((user.username, "operator (all communes)", new_password))

    user, new_password = seed_user(
        ADMIN_USERNAME,
        group=groups[ADMINS],
        password=password,
        is_staff=True,
        is_superuser=True,
    )
    rows.append((user.username, "admin", new_password))

    for school in schools:
        user, new_password = seed_user(
            director_username(school.uai), group=groups[DIRECTORS], password=password
        )
        school.directors.add(user)
        rows.append((user.username, f"director ({school.name})", new_password))
    return rows


# Demo rules from the official figures (air: the episode thresholds of R221-1 on the
# means it names, alerts/regulations.py, and the ATMO index; drinking water: arrêté of
# 11 January 2007; the Cher's flood steps). One city sensor over a threshold is a local
# indicator, not a declared episode. Rules on raw readings are technical alerts (a sensor
# running wild) and are named so: never "seuil d'information" or "seuil d'alerte".
M = timedelta(minutes=1)
POLLUTANT_LABELS = {"pm10": "PM10", "no2": "NO₂", "o3": "O₃", "so2": "SO₂"}


def episode_rule(threshold: EpisodeThreshold) -> tuple[str, dict]:
    """The demo rule of one regulatory episode threshold, on the mean the text names."""
    level = "d'information" if threshold.level == EpisodeLevel.INFORMATION else "d'alerte"
    mean = {"hourly": "moyenne horaire", "daily": "moyenne journalière"}[threshold.aggregate]
    if threshold.consecutive_hours > 1:
        mean += f" sur {threshold.consecutive_hours} h consécutives"
    name = (
        f"{POLLUTANT_LABELS[threshold.pollutant]} : dépassement du seuil {level} "
        f"({threshold.value:g} µg/m³, {mean})"
    )
    return name, dict(
        sensor_kind="air",
        metric=threshold.pollutant,
        threshold=threshold.value,
        aggregate=threshold.aggregate,
        consecutive_hours=threshold.consecutive_hours,
        severity="warning" if threshold.level == EpisodeLevel.INFORMATION else "critical",
    )


# Names the demo's episode rules had when they compared raw readings: seeding again
# switches those off.
FORMER_DEMO_RULES = [
    f"{label} : seuil {level} ({value} µg/m³)"
    for label, level, value in [
        ("PM10", "d'information", 50),
        ("PM10", "d'alerte", 80),
        ("NO₂", "d'information", 200),
        ("NO₂", "d'alerte", 400),
        ("O₃", "d'information", 180),
        ("O₃", "d'alerte", 240),
        ("SO₂", "d'information", 300),
        ("SO₂", "d'alerte", 500),
    ]
]

DEMO_RULES = [
    # name, fields
    *(episode_rule(threshold) for threshold in EPISODES_R221_1.thresholds),
    (
        "PM10 technique : valeur brute au-dessus de 80 µg/m³ pendant 15 min",
        dict(
            sensor_kind="air",
            metric="pm10",
            threshold=80,
            clear_threshold=70,
            duration=15 * M,
            severity="info",
        ),
    ),
    (
        "NO₂ technique : valeur brute au-dessus de 400 µg/m³ pendant 10 min",
        dict(
            sensor_kind="air",
            metric="no2",
            threshold=400,
            clear_threshold=360,
            duration=10 * M,
            severity="info",
        ),
    ),
    (
        "Indice ATMO mauvais ou pire",
        dict(kind="atmo", sensor_kind="air", threshold=4, severity="warning"),
    ),
    (
        "Indice ATMO très mauvais ou pire",
        dict(kind="atmo", sensor_kind="air", threshold=5, severity="critical"),
    ),
    (
        "Eau potable : pH hors référence (6,5 – 9)",
        dict(
            water_points="drinking",
            sensor_kind="water",
            metric="ph",
            condition="outside",
            threshold=6.5,
            threshold_high=9,
            duration=5 * M,
            severity="warning",
        ),
    ),
    (
        "Eau potable : turbidité au-dessus de la référence (0,5 NFU)",
        dict(
            water_points="outlet",
            sensor_kind="water",
            metric="turbidity",
            threshold=0.5,
            clear_threshold=0.4,
            duration=5 * M,
            severity="warning",
        ),
    ),
    (
        "Eau potable : turbidité au-dessus de la limite (1 NFU)",
        dict(
            water_points="outlet",
            sensor_kind="water",
            metric="turbidity",
            threshold=1,
            clear_threshold=0.8,
            duration=5 * M,
            severity="critical",
        ),
    ),
    (
        "Eau potable : chlore libre bas (< 0,3 mg/L)",
        dict(
            water_points="outlet",
            sensor_kind="water",
            metric="chlorine",
            condition="below",
            threshold=0.3,
            clear_threshold=0.35,
            duration=10 * M,
            severity="warning",
        ),
    ),
    (
        "Eau potable : chlore libre absent (< 0,1 mg/L)",
        dict(
            water_points="drinking",
            sensor_kind="water",
            metric="chlorine",
            condition="below",
            threshold=0.1,
            clear_threshold=0.15,
            duration=5 * M,
            severity="critical",
        ),
    ),
    (
        "Eau potable : nitrates au-dessus de la limite de qualité (50 mg/L)",
        dict(
            water_points="drinking",
            sensor_kind="water",
            metric="nitrates",
            threshold=50,
            clear_threshold=45,
            duration=10 * M,
            severity="critical",
        ),
    ),
    (
        "Eau potable : conductivité hors référence (180 – 1000 µS/cm)",
        dict(
            water_points="drinking",
            sensor_kind="water",
            metric="conductivity",
            condition="outside",
            threshold=180,
            threshold_high=1000,
            duration=10 * M,
            severity="warning",
        ),
    ),
    (
        "Cher : vigilance crue (3,5 m)",
        dict(
            sensor_kind="water",
            metric="level",
            threshold=3.5,
            clear_threshold=3.3,
            severity="warning",
            flood_zones=True,
        ),
    ),
    (
        "Cher : crue, évacuation des écoles (4,5 m)",
        dict(
            sensor_kind="water",
            metric="level",
            threshold=4.5,
            clear_threshold=4.2,
            # No single reading decides a PPMS: the level holds 2 minutes, then the
            # authority validates the proposal.
            duration=2 * M,
            severity="critical",
            ppms_scenario="evacuation",
            flood_zones=True,
        ),
    ),
    (
        "Cher : montée rapide (+20 cm en 30 min)",
        dict(
            kind="rate",
            sensor_kind="water",
            metric="level",
            rise=0.2,
            window=30 * M,
            severity="warning",
            flood_zones=True,
        ),
    ),
    (
        "Bâtiment ouvert la nuit",
        dict(
            sensor_kind="opening",
            metric="open",
            condition="equals",
            threshold=1,
            start_time=time(22),
            end_time=time(6),
            severity="critical",
        ),
    ),
    (
        "Bâtiment ouvert le week-end",
        dict(
            sensor_kind="opening",
            metric="open",
            condition="equals",
            threshold=1,
            days=[5, 6],
            severity="warning",
        ),
    ),
    ("Capteur hors ligne", dict(kind="offline", severity="warning")),
    (
        "Valeur figée (PM10 inchangé 2 h)",
        dict(kind="stuck", sensor_kind="air", metric="pm10", window=120 * M, severity="info"),
    ),
]


def seed_rules(zones) -> list[Rule]:
    flood = [zone for zone in zones.values() if zone.type == Zone.Type.FLOOD]
    Rule.objects.filter(name__in=FORMER_DEMO_RULES).update(active=False)
    rules = []
    for name, fields in DEMO_RULES:
        fields = dict(fields)
        in_flood_zones = fields.pop("flood_zones", False)
        scenario = fields.pop("ppms_scenario", "")
        rule, _ = Rule.objects.update_or_create(name=name, defaults=fields)
        rule.full_clean()
        if scenario:
            RuleTrigger.objects.update_or_create(rule=rule, defaults={"scenario": scenario})
        else:
            RuleTrigger.objects.filter(rule=rule).delete()
        if in_flood_zones:
            rule.zones.set(flood)
        rules.append(rule)
    return rules


ACCOUNTS_FILE = "demo-accounts.txt"
ACCOUNTS_HEADER = "# username\tpassword\tauthenticator key\trole\n"


def read_accounts(path: Path) -> dict[str, list[str]]:
    """The rows of an earlier accounts file, by username (none if there is no file)."""
    if not path.exists():
        return {}
    rows = (line.split("\t") for line in path.read_text().splitlines() if line[:1] != "#")
    return {row[0]: row for row in rows if len(row) == 4}


def write_accounts(path: Path, users, keys) -> None:
    """Write every demo account's password and authenticator key to ``path`` (owner-only).

    An account left unchanged by this run keeps what an earlier run wrote for it, so the
    file stays complete when the seed runs again on every ``dev.py start``.
    """
    earlier = read_accounts(path)
    new_keys = dict(keys)
    lines = [ACCOUNTS_HEADER]
    for username, role, new_password in users:
        _, old_password, old_key, _ = earlier.get(username, ("", "(unchanged)", "", ""))
        key = new_keys.get(username)
        key = key.replace(" ", "") if key else (old_key if username in new_keys else "")
        lines.append(f"{username}\t{new_password or old_password}\t{key or '-'}\t{role}\n")
    path.touch(mode=0o600)
    path.write_text("".join(lines))


class Command(BaseCommand):
    help = "Seed a demo town (Joué-lès-Tours and two neighbours); safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help="Set this password on every demo user (tests, local demos). "
            "Otherwise new users get a random one and existing ones keep theirs.",
        )

    def handle(self, *args, password=None, **options):
        with transaction.atomic():
            communes = seed_communes()
            zones = seed_zones(communes)
            sensors = seed_sensors(communes, zones)
            schools = seed_schools(communes, zones)
            shelters = seed_shelters(communes)
            users = seed_users(communes, schools, password=password)
            keys = seed_app_keys(users)
            rules = seed_rules(zones)

        self.print_users(users)
        self.print_app_keys(keys)
        accounts = settings.DATA_DIR / ACCOUNTS_FILE
        write_accounts(accounts, users, keys)
        self.stdout.write(f"Passwords and authenticator keys also written to {accounts}")
        main = communes[MAIN_COMMUNE]
        main_schools = [school for school in schools if school.commune_id == main.pk]
        pupils = sum(school.pupils for school in main_schools)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo town ready: {len(communes)} communes, {len(zones)} zones, "
                f"{len(sensors)} sensors, {len(schools)} schools "
                f"({len(main_schools)} in {main.name}, {pupils:,} pupils), "
                f"{len(shelters)} shelters, {len(rules)} alert rules"
            )
        )

    def print_app_keys(self, keys):
        if not keys:
            return
        width = max(len(username) for username, _ in keys)
        self.stdout.write(
            "Authenticator keys (the second factor of operators, authorities and admins): "
            "add each to an app (FreeOTP, Aegis, Google Authenticator…), or type "
            "`oathtool --totp -b 'KEY'` for the code:"
        )
        for username, key in keys:
            self.stdout.write(f"  {username:<{width}}  {key or '(unchanged)'}")

    def print_users(self, users):
        width = max(len(username) for username, _, _ in users)
        self.stdout.write("Demo users:")
        self.stdout.write(f"  {'username':<{width}}  {'password':<16}  role")
        for username, role, new_password in users:
            shown = new_password or "(unchanged)"
            self.stdout.write(f"  {username:<{width}}  {shown:<16}  {role}")
