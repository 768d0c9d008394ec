"""The operator's live dashboard: the page, its wall-screen mode and its KPI endpoint.

The page is server-rendered (tiles, the map: Leaflet over the tile server's base map,
an SVG drawn from the coordinates when there is none or it does not answer);
``static/js/dashboard.js`` then keeps it live from the websocket and the REST API.
``/dashboard/kpis.json`` answers the same figures, with the tiles' HTML, for the page's
periodic refresh.
"""

import math
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from alerts.models import Alert, Severity
from core.colours import readable_text
from core.roles import is_director, watches_the_town
from ppms.models import Scenario, School, Shelter
from sensors.metrics import REGISTRY, Kind
from sensors.models import Commune, Sensor, Zone

from .kpis import dashboard_kpis
from .tiles import base_map

# The sensor pages (sensors app), /sensors/<ref>/; their route is not ours to reverse.
SENSOR_PAGES = "/sensors/"
TILES = ("air", "water", "river", "watering", "traffic", "openings")
CHART_TRACES_MAX = 8


def home(request):
    """Show each user the start page of their role: operators and admins, the dashboard;
    directors, their school's PPMS page."""
    user = request.user
    if watches_the_town(user):
        return redirect("dashboard")
    if is_director(user) and School.objects.filter(directors=user).exists():
        return redirect("ppms-director")
    context = {
        "is_operator": watches_the_town(user),
        "is_director": is_director(user),
        "communes": Commune.objects.visible_to(user),
        "sensor_count": Sensor.objects.visible_to(user).count(),
        "schools": School.objects.visible_to(user).select_related("commune"),
    }
    return render(request, "home.html", context)


# --- Scope ------------------------------------------------------------------------------


@dataclass
class Scope:
    """What the dashboard shows: the user's communes, or the one selected among them."""

    communes: list[Commune]
    selected: Commune | None

    @property
    def shown(self) -> list[Commune]:
        return [self.selected] if self.selected else self.communes

    def sensors(self) -> list[Sensor]:
        """The active sensors shown, with commune and zones (two queries)."""
        return list(
            Sensor.objects.filter(active=True, commune__in=[c.pk for c in self.shown])
            .select_related("commune")
            .prefetch_related(Prefetch("zones", queryset=Zone.objects.only("pk", "type")))
            .order_by("kind", "ref")
        )


def scope_for(request) -> Scope:
    """Check the user may watch, and read the ``?commune=<insee>`` selection."""
    if not watches_the_town(request.user):
        raise PermissionDenied(_("Réservé aux opérateurs du CSU."))
    communes = list(Commune.objects.visible_to(request.user))
    insee = request.GET.get("commune", "")
    selected = None
    if insee:
        selected = next((c for c in communes if c.insee_code == insee), None)
        if selected is None:
            raise Http404(_("Commune inconnue ou hors de votre périmètre."))
    return Scope(communes, selected)


# --- The map: an equirectangular projection fitted to the bounding box -------------------

MAP_WIDTH = 1000
MAP_HEIGHT_RANGE = (420, 760)
MAP_PADDING = 0.06  # share of the span added on each side
MIN_SPAN_DEG = 0.005


@dataclass(frozen=True)
class Projection:
    west: float
    north: float
    kx: float  # cos(mid latitude): a degree of longitude is shorter than one of latitude
    scale: float  # SVG units per degree of latitude
    dx: float
    dy: float
    width: int
    height: int

    @classmethod
    def fit(cls, points: list[tuple[float, float]]) -> "Projection":
        """Fit a projection to (lon, lat) points, centred in a MAP_WIDTH-wide box."""
        if not points:
            points = [(2.35, 48.85)]  # nothing to show: any place will do
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        west, east, south, north = min(lons), max(lons), min(lats), max(lats)
        span_lon = max(east - west, MIN_SPAN_DEG)
        span_lat = max(north - south, MIN_SPAN_DEG)
        west -= span_lon * MAP_PADDING + (span_lon - (east - west)) / 2
        north += span_lat * MAP_PADDING + (span_lat - (north - south)) / 2
        span_lon *= 1 + 2 * MAP_PADDING
        span_lat *= 1 + 2 * MAP_PADDING
        kx = math.cos(math.radians(north - span_lat / 2))
        natural = MAP_WIDTH * span_lat / (span_lon * kx)
        height = round(min(max(natural, MAP_HEIGHT_RANGE[0]), MAP_HEIGHT_RANGE[1]))
        scale = min(MAP_WIDTH / (span_lon * kx), height / span_lat)
        dx = (MAP_WIDTH - span_lon * kx * scale) / 2
        dy = (height - span_lat * scale) / 2
        return cls(west, north, kx, scale, dx, dy, MAP_WIDTH, height)

    def lon_lat(self, x: float, y: float) -> tuple[float, float]:
        lon = self.west + (x - self.dx) / (self.kx * self.scale)
        return lon, self.north - (y - self.dy) / self.scale

    def centre(self) -> tuple[float, float]:
        """The (lon, lat) at the middle of the map."""
        return self.lon_lat(self.width / 2, self.height / 2)

    def bounds(self) -> list[tuple[float, float]]:
        """The drawn box as Leaflet's [[south, west], [north, east]]."""
        west, north = self.lon_lat(0, 0)
        east, south = self.lon_lat(self.width, self.height)
        return [(round(south, 6), round(west, 6)), (round(north, 6), round(east, 6))]

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        x = self.dx + (lon - self.west) * self.kx * self.scale
        y = self.dy + (self.north - lat) * self.scale
        return round(x, 1), round(y, 1)


def rings_of(geometry) -> list[list]:
    """The linear rings of a GeoJSON Polygon or MultiPolygon ([] for anything else)."""
    if not isinstance(geometry, dict):
        return []
    coordinates = geometry.get("coordinates") or []
    if geometry.get("type") == "Polygon":
        return list(coordinates)
    if geometry.get("type") == "MultiPolygon":
        return [ring for polygon in coordinates for ring in polygon]
    return []


def valid_ring(ring) -> list[tuple[float, float]]:
    try:
        return [(float(p[0]), float(p[1])) for p in ring]
    except (TypeError, ValueError, IndexError):
        return []


def zone_path(rings: list[list[tuple[float, float]]], projection: Projection) -> str:
    parts = []
    for ring in rings:
        points = [projection.xy(lon, lat) for lon, lat in ring]
        if len(points) >= 3:
            parts.append("M" + " L".join(f"{x},{y}" for x, y in points) + " Z")
    return " ".join(parts)


def map_data(scope: Scope, sensors: list[Sensor], user) -> dict:
    """Everything the map draws: zones, schools, shelters, sensors, projected for the SVG
    drawing and, when the tile server answers, as coordinates for Leaflet (four queries)."""
    shown = [c.pk for c in scope.shown]
    zones = list(
        Zone.objects.filter(commune__in=shown).exclude(geometry=None).select_related("commune")
    )
    schools = list(School.objects.visible_to(user).filter(commune__in=shown).order_by("name"))
    shelters = list(Shelter.objects.filter(commune__in=shown).order_by("name"))
    alerting = set(
        Alert.objects.open()
        .filter(sensor__in=[s.pk for s in sensors])
        .values_list("sensor_id", flat=True)
        .order_by()
        .distinct()
    )
    zone_rings = {zone.pk: [valid_ring(r) for r in rings_of(zone.geometry)] for zone in zones}
    points = [(s.longitude, s.latitude) for s in sensors]
    points += [(s.longitude, s.latitude) for s in schools]
    points += [(s.longitude, s.latitude) for s in shelters]
    points += [p for rings in zone_rings.values() for ring in rings for p in ring]
    projection = Projection.fit(points)
    # Districts first, so flood and SEVESO zones are drawn over them.
    order = {Zone.Type.DISTRICT: 0, Zone.Type.OTHER: 1, Zone.Type.FLOOD: 2, Zone.Type.SEVESO: 3}
    zones.sort(key=lambda zone: (order.get(zone.type, 1), zone.name))
    drawn = {
        "width": projection.width,
        "height": projection.height,
        "zones": [
            {
                "id": zone.pk,
                "name": zone.name,
                "commune": zone.commune.name,
                "type": zone.type,
                "type_label": zone.get_type_display(),
                "path": zone_path(zone_rings[zone.pk], projection),
                "rings": [[(lat, lon) for lon, lat in ring] for ring in zone_rings[zone.pk]],
            }
            for zone in zones
            if zone_rings[zone.pk]
        ],
        "schools": [
            {
                "uai": school.uai,
                "name": school.name,
                "pupils": school.pupils,
                "xy": projection.xy(school.longitude, school.latitude),
                "at": (school.latitude, school.longitude),
            }
            for school in schools
        ],
        "shelters": [
            {
                "id": shelter.pk,
                "name": shelter.name,
                "open": shelter.is_open,
                "label": _("%(name)s — centre d'accueil %(state)s, %(occupancy)s / %(capacity)s")
                % {
                    "name": shelter.name,
                    "state": _("ouvert") if shelter.is_open else _("fermé"),
                    "occupancy": shelter.occupancy,
                    "capacity": shelter.capacity,
                },
                "xy": projection.xy(shelter.longitude, shelter.latitude),
                "at": (shelter.latitude, shelter.longitude),
            }
            for shelter in shelters
        ],
        "sensors": [
            {
                "ref": sensor.ref,
                "name": sensor.name,
                "kind": sensor.kind,
                "kind_label": sensor.get_kind_display(),
                "state": "alert" if sensor.pk in alerting else sensor.state,
                "sensor_state": sensor.state,
                "url": f"{SENSOR_PAGES}{sensor.ref}/",
                "xy": projection.xy(sensor.longitude, sensor.latitude),
                "at": (sensor.latitude, sensor.longitude),
            }
            for sensor in sensors
        ],
    }
    # Leaflet over the tiles when the tile server answers; the drawing stays the fallback.
    drawn["base"] = base_map(*projection.centre())
    if drawn["base"]:
        drawn["leaflet"] = {
            "tiles": drawn["base"],
            "bounds": projection.bounds(),
            **{layer: drawn[layer] for layer in ("zones", "schools", "shelters", "sensors")},
        }
    return drawn


# --- What the scripts need ----------------------------------------------------------------


def charts_of(sensors: list[Sensor], kpis: dict) -> list[dict]:
    """The key series: PM10 of the air stations, the river levels, the traffic flow."""
    gauges = {gauge["sensor"] for gauge in kpis["river"]["gauges"]}
    air = [s for s in sensors if s.kind == Kind.AIR]
    river = [s for s in sensors if s.ref in gauges]
    traffic = [s for s in sensors if s.kind == Kind.TRAFFIC]

    def traces(chosen, per_hour=False):
        return [
            {
                "sensor": s.ref,
                "name": s.name,
                "interval": s.expected_interval,
                # Vehicles per interval, shown per hour so that points of different
                # intervals compare.
                "scale": 3600 / s.expected_interval if per_hour else 1,
            }
            # Without a period a count is no flow: such a counter is not drawn.
            for s in [s for s in chosen if s.expected_interval or not per_hour][:CHART_TRACES_MAX]
        ]

    return [
        {
            "name": "pm10",
            "digits": 1,
            "title": _("PM10 des stations d'air"),
            "metric": "pm10",
            "unit": "µg/m³",
            "traces": traces(air),
        },
        {
            "name": "level",
            "digits": 2,
            "title": _("Niveau de la rivière"),
            "metric": "level",
            "unit": "m",
            "traces": traces(river),
        },
        {
            "name": "traffic",
            "digits": 0,
            "title": _("Débit de trafic"),
            "metric": "vehicle_count",
            "unit": _("véh./h"),
            "traces": traces(traffic, per_hour=True),
        },
    ]


def client_config(request, scope: Scope, sensors: list[Sensor], charts, *, wall: bool) -> dict:
    commune = f"?commune={scope.selected.insee_code}" if scope.selected else ""
    return {
        "wall": wall,
        "timeZone": settings.TIME_ZONE,
        "commune": scope.selected.pk if scope.selected else None,
        "urls": {
            "kpis": f"/dashboard/kpis.json{commune}",
            "alerts": "/api/v1/alerts/?attention=true&limit=200",
            "alert": "/api/v1/alerts/{id}/",
            "alertPage": "/alerts/{id}/",
            "incidents": "/api/v1/incidents/?attention=true&limit=200",
            "incident": "/api/v1/incidents/{id}/",
            "silences": "/api/v1/silences/",
            "readings": "/api/v1/sensors/{ref}/readings/",
            "latest": "/api/v1/latest/",
            "sensorPage": SENSOR_PAGES + "{ref}/",
            "live": "/ws/live/",
        },
        "sensors": {
            s.ref: {
                "name": s.name,
                "kind": s.kind,
                "commune": s.commune_id,
                "interval": s.expected_interval,
            }
            for s in sensors
        },
        "kinds": {kind.value: str(kind.label) for kind in Kind},
        "metrics": {
            kind: {name: {"unit": m.unit, "label": m.label} for name, m in metrics.items()}
            for kind, metrics in REGISTRY.items()
        },
        "severities": {
            s.value: {"label": str(s.label), "colour": s.colour, "text": readable_text(s.colour)}
            for s in Severity
        },
        "scenarios": {code: str(label) for code, label in Scenario.choices},
        "charts": charts,
    }


def render_tiles(request, kpis: dict) -> dict[str, str]:
    return {
        name: render_to_string(
            f"dashboard/tile_{name}.html",
            {"kpis": kpis, "sensor_pages": SENSOR_PAGES},
            request=request,
        )
        for name in TILES
    }


# --- Views ------------------------------------------------------------------------------


def _page(request, template: str, *, wall: bool):
    scope = scope_for(request)
    sensors = scope.sensors()
    kpis = dashboard_kpis(sensors)
    charts = charts_of(sensors, kpis)
    context = {
        "scope": scope,
        "sensor_count": len(sensors),
        "tiles": render_tiles(request, kpis),
        "map": map_data(scope, sensors, request.user),
        "charts": charts,
        "config": client_config(request, scope, sensors, charts, wall=wall),
        "severities": list(Severity),
    }
    return render(request, template, context)


@never_cache
def dashboard(request):
    """Show the live dashboard of the communes the operator supervises."""
    return _page(request, "dashboard/dashboard.html", wall=False)


@never_cache
def wall(request):
    """Show the dashboard for the operations room's big screen."""
    return _page(request, "dashboard/wall.html", wall=True)


@never_cache
def kpis_json(request):
    """Answer the tiles' figures and HTML, and each sensor's state, for the page's refresh."""
    scope = scope_for(request)
    sensors = scope.sensors()
    kpis = dashboard_kpis(sensors)
    return JsonResponse(
        {
            "generated_at": kpis["generated_at"],
            "commune": scope.selected.insee_code if scope.selected else None,
            "kpis": kpis,
            "tiles": render_tiles(request, kpis),
            "sensors": {s.ref: s.state for s in sensors},
        },
        json_dumps_params={"ensure_ascii": False},
    )
