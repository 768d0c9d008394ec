// The operator's live dashboard (/dashboard/) and its wall mode (/dashboard/wall/).
//
// The server renders the tiles, the map and the empty console; this script keeps them
// live: websocket events (live.js), the incidents API for the console and its actions,
// the readings API for the charts, /dashboard/kpis.json every 60 s (and ~10 s after
// readings that change a tile), and an audible alarm until alerts are acknowledged.
//
// Stable hooks for browser tests:
//   [data-testid="dashboard"]                 the page (data-wall="true" in wall mode)
//   [data-testid="tile-<name>"]               tiles: air, water, river, watering, traffic,
//                                             openings; inner .tile-body[data-state] is
//                                             ok | warning | alert | info | unknown
//   [data-testid="alert-console"]             the incidents list (aria-live); each incident is
//     li[data-incident-id][data-version][data-severity][data-state] (data-conflict="true"
//     after a 409), its alerts in details[data-role="members"] li[data-alert-id]
//     [data-state], its buttons [data-action=acknowledge|comment|resolve|silence] (on
//     every member), forms [data-form=...], result [data-role="result"], errors
//     [data-error-for="<field>"] and [data-error-for="*"]
//     PPMS escalations (a school still pending after the delay) come first in the same
//     list: li[data-ppms-escalation="<activation id>:<uai>"][data-severity="critical"],
//     a link to the PPMS board [data-role="ppms-board"] and [data-action="ppms-seen"] ("Vu")
//   [data-testid="connection"][data-state]    connected | reconnecting | offline
//   [data-testid="map"]                       the map (Leaflet or the drawing); sensors [data-sensor="<ref>"]
//                                             [data-state=online|offline|unknown|alert],
//                                             schools [data-school="<uai>"], zones
//                                             [data-zone][data-zone-type]
//   [data-testid="chart-<name>"]              charts: pm10, level, traffic
//   [data-testid="mute"][aria-pressed]        "Couper le son" (15 min, localStorage)
//   [data-testid="enable-alerts"]             asks for sound and notifications
//   [data-testid="commune-filter"]            the commune select (several communes only)
//   [data-testid="audio-locked"]              shown while the browser blocks the alarm

import { chartLocale, parisString } from "./chart_locale.js";
import { connectLive, liveUrl } from "./live.js";
import { format, gettext, ngettext } from "./i18n.js";
import { createMap } from "./map.js";
import { plotText } from "./plot_text.js";

const T = {
  connection: {
    connecting: gettext("connexion…"),
    connected: gettext("connecté"),
    reconnecting: gettext("reconnexion…"),
    offline: gettext("hors ligne"),
    unauthenticated: gettext("session expirée\u202f: reconnectez-vous"),
  },
  alertStates: {
    firing: gettext("en cours"),
    acknowledged: gettext("acquittée"),
    resolved: gettext("résolue"),
  },
  sensorStates: {
    online: gettext("en ligne"),
    offline: gettext("hors ligne"),
    unknown: gettext("état inconnu"),
    alert: gettext("en alerte"),
  },
  toAcknowledge: gettext("à acquitter"),
  snoozedUntil: (time) => format(gettext("rappel à %(time)s"), { time }),
  lastValue: gettext("dernière valeur"),
  peak: gettext("extrême"),
  noAlerts: gettext("Aucune alerte à traiter."),
  alertsFailed: gettext("Impossible de charger les alertes"),
  moreAlerts: (n) =>
    format(
      ngettext(
        "%(n)s incident de plus non affiché (les 200 plus récents sont listés).",
        "%(n)s incidents de plus non affichés (les 200 plus récents sont listés).",
        n,
      ),
      { n },
    ),
  sending: gettext("Envoi…"),
  incidentAlerts: (n) => format(ngettext("%(n)s alerte", "%(n)s alertes", n), { n }),
  showAlerts: (n) =>
    format(ngettext("Voir l'alerte (%(n)s)", "Voir les alertes (%(n)s)", n), { n }),
  done: {
    acknowledge: gettext("Alertes de l'incident acquittées."),
    comment: gettext("Commentaire ajouté."),
    resolve: gettext("Alertes de l'incident résolues."),
    silence: (until) => format(gettext("Capteur en sourdine jusqu'à %(until)s."), { until }),
  },
  network: gettext("Erreur réseau\u202f: rien n'a été enregistré. Réessayez."),
  server: (status) =>
    format(gettext("Erreur du serveur (%(status)s)\u202f: rien n'a été enregistré."), { status }),
  sessionExpired: gettext("Session expirée\u202f: reconnectez-vous, rien n'a été enregistré."),
  mute: gettext("Couper le son (15 min)"),
  muted: (time) => format(gettext("Son coupé jusqu'à %(time)s — rétablir"), { time }),
  enabled: gettext("Son et notifications activés"),
  soundOnly: gettext("Son activé (notifications refusées par le navigateur)"),
  openSensor: gettext("Ouvrir la fiche du capteur"),
  pupils: (n) => format(ngettext("%(n)s élève", "%(n)s élèves", n), { n }),
  noData: gettext("aucune mesure reçue"),
  at: (time) => format(gettext("à %(time)s"), { time }),
  chartEmpty: gettext("Aucune mesure sur 6 h"),
  chartFailed: gettext("Courbe indisponible"),
  chartUnavailable: gettext("Courbes indisponibles (plotly.js non chargé)"),
  timeAxis: gettext("heure de Paris"),
  kpisFailed: gettext("Indicateurs non actualisés"),
  network_short: gettext("réseau"),
  school: gettext("École"),
  ppms: {
    title: (school, minutes) =>
      format(gettext("PPMS\u202f: %(school)s sans réponse depuis %(minutes)s min"), {
        school,
        minutes,
      }),
    state: gettext("sans réponse · escaladée"),
    board: gettext("Ouvrir le tableau PPMS"),
    seen: gettext("Vu"),
    severity: gettext("PPMS"),
    proposal: gettext("Proposition de déclenchement PPMS"),
    proposalFacts: (schools, time) =>
      format(
        ngettext(
          "%(schools)s école · proposée à %(time)s",
          "%(schools)s écoles · proposée à %(time)s",
          schools,
        ),
        { schools, time },
      ),
    decide: gettext("Décider sur le tableau PPMS"),
    closed: gettext("écoles fermées (hors classe)"),
    active: gettext("PPMS en cours"),
    drill: gettext("EXERCICE"),
    // Evacuated schools are their own state: out of the building, not "en sûreté".
    activeFacts: (safe, evacuated, pending, help, minutes) =>
      format(
        gettext(
          "%(safe)s en sûreté · %(evacuated)s évacuées · %(pending)s en attente · %(help)s besoin d'aide · depuis %(minutes)s min",
        ),
        { safe, evacuated, pending, help, minutes },
      ),
  },
};

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const TZ = config.timeZone;
const LANG = document.documentElement.lang || "fr";
const MUTE_KEY = "csu.dashboard.mutedUntil";
const MUTE_MS = 15 * 60 * 1000;
const WINDOW_MS = 6 * 3600 * 1000;
const BUCKET = "5m";
const BUCKET_MS = 5 * 60 * 1000;
const GAP_FACTOR = 2.5;
const KPI_POLL_MS = 60 * 1000;
const KPI_SOON_MS = 10 * 1000;
const KPI_KINDS = new Set(["water", "watering", "traffic", "opening"]);
const PPMS_ACTIVE_URL = "/api/v1/ppms/activations/?active=true&limit=200";
const PPMS_STATUSES_URL = "/api/v1/ppms/activations/{id}/statuses/";
const PPMS_BOARD_URL = "/ppms/";
const PPMS_SEEN_KEY = "csu.dashboard.ppmsSeen"; // sessionStorage: ["<activation>:<uai>", …]
const PROPOSALS_URL = "/api/v1/ppms/proposals/?state=pending&limit=50";
const PROPOSALS_SEEN_KEY = "csu.dashboard.proposalsSeen"; // sessionStorage: [id, …]

const $ = (selector, root = document) => root.querySelector(selector);

// --- Helpers --------------------------------------------------------------------------

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// Fetch JSON; answer { ok, status, data } and never throw (status 0: network error).
async function api(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, data: null };
  }
  // Pages redirect an expired session to the login form; the API answers 401.
  if (response.redirected && response.url.includes("/accounts/login/")) {
    return { ok: false, status: 401, data: null };
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    data = await response.json().catch(() => null);
  }
  return { ok: response.ok, status: response.status, data };
}

const timeFormat = new Intl.DateTimeFormat(LANG, {
  timeZone: TZ,
  hour: "2-digit",
  minute: "2-digit",
});
const dayTimeFormat = new Intl.DateTimeFormat(LANG, {
  timeZone: TZ,
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const clockFormat = new Intl.DateTimeFormat(LANG, {
  timeZone: TZ,
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

function shortTime(date) {
  const sameDay = new Date() - date < 20 * 3600 * 1000;
  return (sameDay ? timeFormat : dayTimeFormat).format(date);
}

function number(value, digits) {
  return new Intl.NumberFormat(LANG, {
    minimumFractionDigits: 0,
    maximumFractionDigits: digits,
  }).format(value);
}

const sensorOf = (ref) => config.sensors[ref];
const inScope = (ref) => ref in config.sensors;
const communeInScope = (id) => config.commune === null || config.commune === id;

function metricOf(ref, metric) {
  const sensor = sensorOf(ref);
  return (sensor && config.metrics[sensor.kind]?.[metric]) || { unit: "", label: metric };
}

function withUnit(ref, metric, value) {
  const { unit } = metricOf(ref, metric);
  const shown = number(value, 2);
  return unit === "state" ? shown : `${shown} ${unit}`;
}

// --- Latest values (tooltips, values in the tiles) ------------------------------------

const latest = {}; // ref -> metric -> { value, ts (ms) }

function storeReading(ref, metric, value, ts) {
  const values = (latest[ref] ||= {});
  const at = Date.parse(ts); // the API writes "…Z", the websocket "…+00:00"
  if (values[metric] && values[metric].ts > at) return false;
  values[metric] = { value, ts: at };
  return true;
}

async function loadLatest() {
  const { ok, data } = await api(config.urls.latest);
  if (!ok) return;
  for (const item of data.items) {
    if (inScope(item.sensor)) storeReading(item.sensor, item.metric, item.value, item.ts);
  }
}

function showLiveValue(ref, metric, value) {
  for (const node of document.querySelectorAll(`[data-live="${ref}:${metric}"]`)) {
    node.textContent = number(value, Number(node.dataset.digits || 2));
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
  }
}

// --- Tiles ----------------------------------------------------------------------------

let kpiTimer = null;

async function refreshKpis() {
  clearTimeout(kpiTimer);
  kpiTimer = null;
  const { ok, status, data } = await api(config.urls.kpis);
  const tiles = $("#tiles");
  tiles.dataset.stale = ok ? "false" : "true";
  tiles.title = ok ? "" : `${T.kpisFailed} (${status || T.network_short})`;
  if (!ok) return;
  for (const [name, html] of Object.entries(data.tiles)) {
    const tile = document.getElementById(`tile-${name}`);
    if (tile) tile.innerHTML = html;
  }
  map?.setStates(data.sensors);
}

function refreshKpisSoon() {
  kpiTimer ??= setTimeout(refreshKpis, KPI_SOON_MS);
}

// --- Map ------------------------------------------------------------------------------

function describe(node) {
  if (node.dataset.school) {
    return {
      title: node.dataset.name,
      lines: [T.school, T.pupils(node.dataset.pupils)],
      link: null,
    };
  }
  const ref = node.dataset.sensor;
  const sensor = sensorOf(ref) || { name: ref, kind: node.dataset.kind };
  const lines = [
    `${config.kinds[sensor.kind] || sensor.kind} · ${T.sensorStates[node.dataset.state] || ""}`,
  ];
  const values = latest[ref] || {};
  for (const [metric, { value, ts }] of Object.entries(values)) {
    const when = shortTime(new Date(ts));
    lines.push(`${metricOf(ref, metric).label} : ${withUnit(ref, metric, value)} (${when})`);
  }
  if (!Object.keys(values).length) lines.push(T.noData);
  return {
    title: sensor.name,
    lines,
    link: {
      href: config.urls.sensorPage.replace("{ref}", encodeURIComponent(ref)),
      text: T.openSensor,
    },
  };
}

const mapSvg = $('[data-testid="map"]');
const map = mapSvg ? createMap(mapSvg, $("#map-tooltip"), { describe }) : null;

// --- Alert console: incidents ----------------------------------------------------------
//
// The console lists incidents (alerts sharing a cause, /api/v1/incidents/), each a card
// with its alerts expandable and one set of actions; `alerts` keeps the single alerts
// the alarm and the map follow.

const alerts = new Map(); // id -> alert, as the API and the websocket give it
const incidents = new Map(); // id -> incident, with its alerts
const consoleList = $('[data-testid="alert-console"]');
const itemTemplate = $("#alert-item-template");
const memberTemplate = $("#incident-member-template");
let alertsOverflow = 0;

const needsAttention = (alert) =>
  alert.state !== "resolved" ||
  (alert.acknowledged_at === null &&
    (alert.severity === "warning" || alert.severity === "critical"));
const incidentNeedsAttention = (incident) => (incident.alerts || []).some(needsAttention);

function setConsoleStatus(text) {
  $('[data-role="console-status"]').textContent = text;
}

function paintSeverity(node, badge, level) {
  const severity = config.severities[level] || { label: level, colour: "#555", text: "#fff" };
  node.style.setProperty("--severity", severity.colour);
  badge.textContent = severity.label;
  badge.style.background = severity.colour;
  badge.style.color = severity.text;
}

function alertValues(alert) {
  const values = [];
  if (alert.last_value !== null && alert.metric) {
    values.push(`${T.lastValue} ${withUnit(alert.sensor, alert.metric, alert.last_value)}`);
  }
  if (alert.peak_value !== null && alert.metric && alert.peak_value !== alert.last_value) {
    values.push(`${T.peak} ${withUnit(alert.sensor, alert.metric, alert.peak_value)}`);
  }
  return values.join(" · ");
}

function renderMember(alert) {
  const item = memberTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.alertId = alert.id;
  item.dataset.severity = alert.severity;
  item.dataset.state = alert.state;
  paintSeverity(item, $('[data-role="severity"]', item), alert.severity);
  const state = [T.alertStates[alert.state] || alert.state];
  if (alert.needs_acknowledgement) state.push(T.toAcknowledge);
  if (alert.snoozed_until) state.push(T.snoozedUntil(shortTime(new Date(alert.snoozed_until))));
  $('[data-role="state"]', item).textContent = state.join(" · ");
  const page = $('[data-role="alert"]', item);
  page.textContent = alert.rule?.name || alert.title;
  page.href = config.urls.alertPage.replace("{id}", alert.id);
  const link = $('[data-role="sensor"]', item);
  link.textContent = sensorOf(alert.sensor)?.name || alert.sensor;
  link.href = config.urls.sensorPage.replace("{ref}", encodeURIComponent(alert.sensor));
  const opened = $('[data-role="opened"]', item);
  opened.dateTime = alert.opened_at;
  opened.textContent = shortTime(new Date(alert.opened_at));
  $('[data-role="value"]', item).textContent = alertValues(alert);
  return item;
}

function renderIncident(item, incident) {
  const members = incident.alerts || [];
  item.dataset.incidentId = incident.id;
  item.dataset.version = incident.version;
  item.dataset.severity = incident.severity;
  item.dataset.state = incident.state;
  paintSeverity(item, $('[data-role="severity"]', item), incident.severity);
  const state = [T.alertStates[incident.state] || incident.state];
  if (incident.needs_acknowledgement) state.push(T.toAcknowledge);
  $('[data-role="state"]', item).textContent = state.join(" · ");
  $('[data-role="title"]', item).textContent = incident.title;
  $('[data-role="count"]', item).textContent = T.incidentAlerts(members.length);
  for (const [role, at] of [
    ["first", incident.first_at],
    ["last", incident.last_at],
  ]) {
    const time = $(`[data-role="${role}"]`, item);
    time.dateTime = at;
    time.textContent = shortTime(new Date(at));
  }
  $('[data-role="members-summary"]', item).textContent = T.showAlerts(members.length);
  $('[data-role="member-list"]', item).replaceChildren(...members.map(renderMember));
  const show = {
    acknowledge: members.some(
      (alert) => alert.acknowledged_at === null || alert.state === "firing",
    ),
    resolve: members.some((alert) => alert.state !== "resolved"),
  };
  for (const button of item.querySelectorAll("[data-action]")) {
    button.hidden = show[button.dataset.action] === false;
  }
  const sensors = $('[data-role="silence-sensor"]', item);
  if (sensors) {
    const refs = [...new Set(members.map((alert) => alert.sensor))];
    const chosen = sensors.value;
    sensors.replaceChildren(
      ...refs.map((ref) => new Option(sensorOf(ref)?.name || ref, ref, false, ref === chosen)),
    );
  }
}

function newItem() {
  return itemTemplate.content.firstElementChild.cloneNode(true);
}

function drawConsole() {
  const shown = [...incidents.values()]
    .filter((incident) => communeInScope(incident.commune.id) && incidentNeedsAttention(incident))
    .sort((a, b) => Date.parse(b.last_at) - Date.parse(a.last_at) || b.id - a.id);
  const wanted = new Set(shown.map((incident) => String(incident.id)));
  for (const item of consoleList.querySelectorAll("[data-incident-id]")) {
    if (!wanted.has(item.dataset.incidentId)) item.remove();
  }
  const offset = drawEscalations(); // the PPMS escalations come first
  // Move only what is out of place, so an open form keeps its focus and text.
  shown.forEach((incident, index) => {
    let item = consoleList.querySelector(`[data-incident-id="${incident.id}"]`);
    if (!item) item = newItem();
    renderIncident(item, incident);
    if (consoleList.children[offset + index] !== item)
      consoleList.insertBefore(item, consoleList.children[offset + index] || null);
  });
  let empty = $('[data-role="empty"]', consoleList);
  if (!shown.length && !offset) {
    if (!empty) {
      empty = document.createElement("li");
      empty.className = "empty";
      empty.dataset.role = "empty";
      consoleList.append(empty);
    }
    empty.textContent = T.noAlerts;
  } else if (empty) {
    empty.remove();
  }
  const total = shown.length + offset;
  $('[data-role="alert-count"]').textContent = total ? `(${total})` : "";
  setConsoleStatus(alertsOverflow > 0 ? T.moreAlerts(alertsOverflow) : "");
  map?.setAlerting(
    [...alerts.values()]
      .filter((alert) => communeInScope(alert.commune.id) && alert.state !== "resolved")
      .map((alert) => alert.sensor),
  );
  alarm.update();
}

function storeAlert(alert) {
  if (needsAttention(alert)) alerts.set(alert.id, { ...alerts.get(alert.id), ...alert });
  else alerts.delete(alert.id);
}

function upsertAlert(alert) {
  storeAlert(alert);
  drawConsole();
}

function upsertIncident(incident) {
  const known = incidents.get(incident.id);
  if (known && known.version > incident.version) return; // an older state, arrived late
  if (incidentNeedsAttention(incident)) incidents.set(incident.id, incident);
  else incidents.delete(incident.id);
  for (const alert of incident.alerts || []) storeAlert(alert);
  drawConsole();
}

async function loadAlerts() {
  const started = Date.now();
  const [answer, incidentAnswer] = await Promise.all([
    api(config.urls.alerts),
    api(config.urls.incidents),
  ]);
  const { ok, status, data } = answer;
  if (!ok || !incidentAnswer.ok) {
    setConsoleStatus(`${T.alertsFailed} (${status || incidentAnswer.status || T.network_short}).`);
    return;
  }
  const fetched = new Map(data.results.map((alert) => [alert.id, alert]));
  // Keep what the websocket pushed while the list was on its way.
  for (const [id, alert] of alerts) {
    if (!fetched.has(id) && alert.pushedAt > started && needsAttention(alert))
      fetched.set(id, alert);
  }
  alerts.clear();
  for (const [id, alert] of fetched) alerts.set(id, alert);
  const fetchedIncidents = new Map(
    incidentAnswer.data.results.map((incident) => [incident.id, incident]),
  );
  for (const [id, incident] of incidents) {
    const listed = fetchedIncidents.get(id);
    if (incident.pushedAt > started && (!listed || listed.version < incident.version))
      fetchedIncidents.set(id, incident);
  }
  incidents.clear();
  for (const [id, incident] of fetchedIncidents) incidents.set(id, incident);
  alertsOverflow = Math.max(0, incidentAnswer.data.count - incidentAnswer.data.results.length);
  drawConsole();
}

// --- PPMS escalations in the console ----------------------------------------------------
//
// A school still pending after the delay: a critical entry linking to the PPMS board,
// ringing until the operator clicks "Vu" (this tab's session) or the school answers.

const escalations = new Map(); // "<activation>:<uai>" -> escalation

function seenEscalations() {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(PPMS_SEEN_KEY) || "[]"));
  } catch {
    return new Set();
  }
}

function markEscalationSeen(key) {
  const seen = seenEscalations();
  seen.add(key);
  try {
    sessionStorage.setItem(PPMS_SEEN_KEY, JSON.stringify([...seen]));
  } catch {
    /* storage full or refused: dismissed for this page only */
  }
  escalations.delete(key);
  drawConsole();
}

// The dashboard's commune filter: the map draws the selected commune's schools only.
function schoolInScope(uai) {
  if (config.commune === null || !mapSvg) return true;
  return Boolean(mapSvg.querySelector(`[data-school="${CSS.escape(uai)}"]`));
}

function escalationKey(activationId, uai) {
  return `${activationId}:${uai}`;
}

// Add (or refresh) an escalation from an activation and a school status; false if not one.
function storeEscalation(activation, status, pushedAt = 0) {
  if (activation.ended_at || status.state !== "pending" || !status.escalated_at) return false;
  const key = escalationKey(activation.id, status.school);
  if (seenEscalations().has(key) || !schoolInScope(status.school)) return false;
  const known = escalations.has(key);
  escalations.set(key, {
    key,
    activation: activation.id,
    uai: status.school,
    school: status.school_name || status.school,
    startedAt: activation.started_at,
    escalatedAt: status.escalated_at,
    pushedAt,
  });
  return !known;
}

function pendingMinutes(escalation) {
  const since = Date.parse(escalation.startedAt || escalation.escalatedAt);
  return Math.max(0, Math.floor((Date.now() - since) / 60000));
}

function escalationItem(escalation) {
  const item = document.createElement("li");
  item.className = "alert-item ppms-escalation";
  item.dataset.ppmsEscalation = escalation.key;
  item.dataset.severity = "critical";
  item.dataset.state = "firing";
  const colour = config.severities.critical?.colour || "#b00020";
  item.style.setProperty("--severity", colour);
  const summary = document.createElement("div");
  summary.className = "alert-summary";
  const badge = document.createElement("span");
  badge.className = "sev";
  badge.dataset.role = "severity";
  badge.textContent = T.ppms.severity;
  badge.style.background = colour;
  badge.style.color = config.severities.critical?.text || "#fff";
  const state = document.createElement("span");
  state.className = "alert-state";
  state.dataset.role = "state";
  state.textContent = T.ppms.state;
  const title = document.createElement("strong");
  title.className = "alert-title";
  title.dataset.role = "title";
  const meta = document.createElement("span");
  meta.className = "alert-meta";
  const link = document.createElement("a");
  link.href = PPMS_BOARD_URL;
  link.dataset.role = "ppms-board";
  link.textContent = T.ppms.board;
  const at = document.createElement("time");
  at.dataset.role = "opened";
  at.dateTime = escalation.escalatedAt;
  at.textContent = shortTime(new Date(escalation.escalatedAt));
  meta.append(link, " · ", at);
  summary.append(badge, " ", state, " ", title, " ", meta);
  item.append(summary);
  if (!config.wall) {
    const actions = document.createElement("div");
    actions.className = "alert-actions";
    const seen = document.createElement("button");
    seen.type = "button";
    seen.dataset.action = "ppms-seen";
    seen.textContent = T.ppms.seen;
    actions.append(seen);
    item.append(actions);
  }
  return item;
}

// Draw the escalations at the top of the console; answer how many are shown.
function drawEscalations() {
  if (!consoleList) return 0;
  const shown = [...escalations.values()].sort(
    (a, b) => Date.parse(a.escalatedAt) - Date.parse(b.escalatedAt) || a.key.localeCompare(b.key),
  );
  const wanted = new Set(shown.map((escalation) => escalation.key));
  for (const item of consoleList.querySelectorAll("[data-ppms-escalation]")) {
    if (!wanted.has(item.dataset.ppmsEscalation)) item.remove();
  }
  shown.forEach((escalation, index) => {
    let item = consoleList.querySelector(
      `[data-ppms-escalation="${CSS.escape(escalation.key)}"]`,
    );
    if (!item) item = escalationItem(escalation);
    $('[data-role="title"]', item).textContent = T.ppms.title(
      escalation.school,
      pendingMinutes(escalation),
    );
    if (consoleList.children[index] !== item)
      consoleList.insertBefore(item, consoleList.children[index] || null);
  });
  return shown.length;
}

async function loadEscalations() {
  const started = Date.now();
  const { ok, data } = await api(PPMS_ACTIVE_URL);
  if (!ok) return; // the live events still come; the next reconnect tries again
  const activations = (Array.isArray(data) ? data : data.results || []).filter(
    (activation) => !activation.ended_at,
  );
  const answers = await Promise.all(
    activations.map((activation) =>
      api(PPMS_STATUSES_URL.replace("{id}", String(activation.id))),
    ),
  );
  const pushed = [...escalations.values()].filter((escalation) => escalation.pushedAt > started);
  escalations.clear();
  activePpms.clear();
  activations.forEach((activation, index) => {
    const { ok: fetched, data: statuses } = answers[index];
    if (!fetched || !Array.isArray(statuses)) return;
    activePpms.set(activation.id, { activation, statuses });
    for (const status of statuses) storeEscalation(activation, status);
  });
  drawPpmsStrip();
  // Keep what the websocket pushed while the lists were on their way.
  for (const escalation of pushed) escalations.set(escalation.key, escalation);
  drawConsole();
}

function onPpms(message) {
  const activation = message.activation;
  if (!activation) return;
  const status = message.status;
  // Who was told how (the board's): nothing the strip or the console shows.
  if (["seen", "reach", "call"].includes(message.event)) return;
  loadEscalationsSoon(); // the strip's counts follow every change
  if (message.event === "ended") {
    for (const [key, escalation] of escalations) {
      if (escalation.activation === activation.id) escalations.delete(key);
    }
  } else if (message.event === "escalated" && status) {
    if (storeEscalation(activation, status, Date.now())) {
      alarm.notifyEscalation(escalations.get(escalationKey(activation.id, status.school)));
    }
  } else if (message.event === "status" && status && status.state !== "pending") {
    escalations.delete(escalationKey(activation.id, status.school)); // the school answered
  } else {
    return;
  }
  drawConsole();
}

// --- The PPMS strip: proposals waiting for a decision, activations under way ------------
//
// On top of the dashboard and the wall. A proposal rings until the operator clicks "Vu"
// (this tab's session) or it is decided; an activation shows its schools' counts.

const strip = $("#ppms-strip");
const proposals = new Map(); // id -> proposal (the API's, pending)
const activePpms = new Map(); // activation id -> { activation, statuses }
let escalationsTimer = null;

function loadEscalationsSoon() {
  clearTimeout(escalationsTimer);
  escalationsTimer = setTimeout(loadEscalations, 300);
}

function seenProposals() {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(PROPOSALS_SEEN_KEY) || "[]"));
  } catch {
    return new Set();
  }
}

function unseenProposals() {
  const seen = seenProposals();
  return [...proposals.values()].filter((proposal) => !seen.has(proposal.id));
}

async function loadProposals() {
  const { ok, data } = await api(PROPOSALS_URL);
  if (!ok) return;
  proposals.clear();
  for (const proposal of data.results || []) proposals.set(proposal.id, proposal);
  drawPpmsStrip();
  alarm.update();
}

function stripItem(kind, heading, title, facts, link) {
  const item = document.createElement("div");
  item.className = `ppms-strip-item ppms-strip-${kind}`;
  const strong = document.createElement("strong");
  strong.textContent = heading;
  const name = document.createElement("span");
  name.className = "ppms-strip-title";
  name.textContent = title;
  const small = document.createElement("span");
  small.className = "ppms-strip-facts";
  small.textContent = facts;
  const anchor = document.createElement("a");
  anchor.href = PPMS_BOARD_URL;
  anchor.textContent = link;
  item.append(strong, " ", name, " ", small, " ", anchor);
  return item;
}

function drawPpmsStrip() {
  if (!strip) return;
  const items = [];
  const seen = seenProposals();
  for (const proposal of proposals.values()) {
    const scenario = config.scenarios?.[proposal.scenario] || proposal.scenario;
    const item = stripItem(
      "proposal",
      T.ppms.proposal,
      `${scenario} — ${proposal.title}`,
      T.ppms.proposalFacts(proposal.schools.length, timeFormat.format(new Date(proposal.created_at))) +
        (proposal.schools_open === 0 ? ` · ${T.ppms.closed}` : ""),
      T.ppms.decide,
    );
    item.dataset.proposal = proposal.id;
    item.setAttribute("data-testid", "ppms-strip-proposal");
    if (!seen.has(proposal.id) && !config.wall) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = "proposal-seen";
      button.textContent = T.ppms.seen;
      item.append(" ", button);
    }
    items.push(item);
  }
  for (const { activation, statuses } of activePpms.values()) {
    const count = (state) => statuses.filter((status) => status.state === state).length;
    const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(activation.started_at)) / 60000));
    const scenario = config.scenarios?.[activation.scenario] || activation.scenario;
    const item = stripItem(
      activation.drill ? "drill" : "active",
      activation.drill ? `${T.ppms.active} · ${T.ppms.drill}` : T.ppms.active,
      `${scenario} — ${activation.title}`,
      T.ppms.activeFacts(
        count("safe"),
        count("evacuated"),
        count("pending"),
        count("needs_help"),
        minutes,
      ),
      T.ppms.board,
    );
    item.setAttribute("data-testid", "ppms-strip-activation");
    items.push(item);
  }
  strip.replaceChildren(...items);
  strip.hidden = !items.length;
  highlightPpmsSchools();
}

// The schools of an activation under way stand out on the map: red until safe.
function highlightPpmsSchools() {
  if (!mapSvg) return;
  const states = new Map();
  for (const { statuses } of activePpms.values()) {
    for (const status of statuses) {
      const safe = status.state === "safe" || status.state === "evacuated";
      if (!safe || !states.has(status.school)) states.set(status.school, safe ? "safe" : "on");
    }
  }
  for (const node of mapSvg.querySelectorAll("[data-school]")) {
    const state = states.get(node.dataset.school);
    if (state) node.dataset.ppms = state;
    else delete node.dataset.ppms;
  }
}

strip?.addEventListener("click", (event) => {
  const button = event.target.closest('[data-action="proposal-seen"]');
  const item = button?.closest("[data-proposal]");
  if (!item) return;
  const seen = seenProposals();
  seen.add(Number(item.dataset.proposal));
  try {
    sessionStorage.setItem(PROPOSALS_SEEN_KEY, JSON.stringify([...seen]));
  } catch {
    /* storage refused: seen for this page only */
  }
  drawPpmsStrip();
  alarm.update();
});

if (consoleList && !config.wall) {
  consoleList.addEventListener("click", (event) => {
    const button = event.target.closest('[data-action="ppms-seen"]');
    const item = button?.closest("[data-ppms-escalation]");
    if (item) markEscalationSeen(item.dataset.ppmsEscalation);
  });
}

// The minutes in the titles go on counting.
setInterval(() => escalations.size && drawEscalations(), 30 * 1000);

// --- Alert actions --------------------------------------------------------------------

function clearErrors(item) {
  for (const node of item.querySelectorAll("[data-error-for]")) node.textContent = "";
}

function showErrors(item, form, status, data) {
  const general = $('[data-error-for="*"]', item);
  if (status === 0) return (general.textContent = T.network);
  if (status === 401) return (general.textContent = T.sessionExpired);
  if (!data || typeof data !== "object") return (general.textContent = T.server(status));
  const rest = [];
  for (const [field, messages] of Object.entries(data)) {
    const text = [].concat(messages).join(" ");
    const slot = form && $(`[data-error-for="${CSS.escape(field)}"]`, form);
    if (slot) slot.textContent = text;
    else rest.push(text);
  }
  general.textContent = rest.join(" ") || (status >= 500 ? T.server(status) : "");
}

function requestFor(action, incident, form) {
  const fields = Object.fromEntries(new FormData(form));
  const url = config.urls.incident.replace("{id}", incident.id);
  const version = incident.version;
  if (action === "acknowledge") {
    const body = { version, comment: fields.comment || "" };
    if (fields.snooze_minutes) body.snooze_minutes = Number(fields.snooze_minutes);
    return { url: `${url}acknowledge-all/`, body };
  }
  if (action === "comment") return { url: `${url}comments/`, body: { version, text: fields.text } };
  if (action === "resolve")
    return { url: `${url}resolve-all/`, body: { version, comment: fields.comment || "" } };
  const endsAt = new Date(Date.now() + Number(fields.duration) * 60 * 1000);
  return {
    url: config.urls.silences,
    body: { sensor: fields.sensor, ends_at: endsAt.toISOString(), reason: fields.reason },
  };
}

async function submitAction(item, form) {
  const action = form.dataset.form;
  const incident = incidents.get(Number(item.dataset.incidentId));
  if (!incident) return;
  clearErrors(item);
  const result = $('[data-role="result"]', item);
  result.textContent = T.sending;
  const submit = $("button[type=submit]", form);
  submit.disabled = true;
  const { url, body } = requestFor(action, incident, form);
  const { ok, status, data } = await api(url, { method: "POST", body });
  submit.disabled = false;
  if (status === 409 && data?.incident) {
    // An alert changed since the card was drawn: show the incident as it is now, say
    // so, and leave the form open for the operator to look and send again.
    result.textContent = "";
    upsertIncident({ ...data.incident, pushedAt: Date.now() });
    const general = $('[data-error-for="*"]', item);
    general.textContent = data.detail;
    general.scrollIntoView({ block: "nearest" });
    item.dataset.conflict = "true";
    return;
  }
  delete item.dataset.conflict;
  if (!ok) {
    result.textContent = "";
    showErrors(item, form, status, data);
    return;
  }
  form.reset();
  form.hidden = true;
  const done =
    action === "silence" ? T.done.silence(shortTime(new Date(data.ends_at))) : T.done[action];
  result.textContent = done;
  if (action === "silence") return;
  upsertIncident({ ...data, pushedAt: Date.now() });
  // Done with: the incident left the console, so say it above the list.
  if (!incidentNeedsAttention(data)) setConsoleStatus(`${done} ${data.title}`);
}

if (consoleList && !config.wall) {
  consoleList.addEventListener("click", (event) => {
    const item = event.target.closest("[data-incident-id]");
    if (!item) return;
    const button = event.target.closest("[data-action]");
    if (button) {
      for (const form of item.querySelectorAll("[data-form]")) {
        form.hidden = form.dataset.form !== button.dataset.action;
      }
      clearErrors(item);
      $('[data-role="result"]', item).textContent = "";
      const form = $(`[data-form="${button.dataset.action}"]`, item);
      $("textarea, select", form)?.focus();
    } else if (event.target.closest("[data-cancel]")) {
      const form = event.target.closest("form");
      form.hidden = true;
      clearErrors(item);
      $(`[data-action="${form.dataset.form}"]`, item)?.focus();
    }
  });
  consoleList.addEventListener("submit", (event) => {
    event.preventDefault();
    submitAction(event.target.closest("[data-incident-id]"), event.target);
  });
}

// --- Alarm: sound per severity until acknowledged, notifications, mute ---------------

// Critical: three short high beeps every second; warning: one low beep every 4 s.
const PATTERNS = {
  critical: {
    every: 1,
    wave: "square",
    beeps: [
      [0, 0.12, 1175],
      [0.2, 0.12, 1175],
      [0.4, 0.12, 1175],
    ],
  },
  warning: { every: 4, wave: "sine", beeps: [[0, 0.4, 660]] },
};

const alarm = {
  context: null,
  seconds: 0,
  muteButton: $('[data-testid="mute"]'),
  lockedNote: $('[data-testid="audio-locked"]'),

  mutedUntil() {
    return Number(localStorage.getItem(MUTE_KEY)) || 0;
  },
  isMuted() {
    return this.mutedUntil() > Date.now();
  },
  ringing() {
    if (escalations.size) return "critical"; // a school without an answer
    if (unseenProposals().length) return "critical"; // a PPMS waits for a decision
    let worst = null;
    for (const alert of alerts.values()) {
      if (!communeInScope(alert.commune.id) || !alert.needs_acknowledgement || alert.muted) continue;
      if (alert.severity === "critical") return "critical";
      if (alert.severity === "warning") worst = "warning";
    }
    return worst;
  },
  unlock() {
    if (!this.context && window.AudioContext) this.context = new AudioContext();
    if (this.context?.state === "suspended") this.context.resume();
    this.update();
  },
  beep(start, duration, frequency, wave) {
    const ctx = this.context;
    const oscillator = ctx.createOscillator();
    const gain = ctx.createGain();
    oscillator.type = wave;
    oscillator.frequency.value = frequency;
    const t0 = ctx.currentTime + start;
    // A short ramp in and out: no click.
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + duration);
    oscillator.connect(gain).connect(ctx.destination);
    oscillator.start(t0);
    oscillator.stop(t0 + duration + 0.02);
  },
  tick() {
    this.seconds += 1;
    if (this.seconds % 15 === 0) this.update(); // the mute ends by itself
    const severity = this.ringing();
    const pattern = PATTERNS[severity];
    if (!pattern || this.isMuted() || this.context?.state !== "running") return;
    if (this.seconds % pattern.every !== 0) return;
    for (const [start, duration, frequency] of pattern.beeps) {
      this.beep(start, duration, frequency, pattern.wave);
    }
  },
  update() {
    const muted = this.isMuted();
    if (this.muteButton) {
      this.muteButton.setAttribute("aria-pressed", String(muted));
      this.muteButton.textContent = muted
        ? T.muted(timeFormat.format(new Date(this.mutedUntil())))
        : T.mute;
    }
    if (this.lockedNote) {
      this.lockedNote.hidden = muted || !this.ringing() || this.context?.state === "running";
    }
  },
  toggleMute() {
    if (this.isMuted()) localStorage.removeItem(MUTE_KEY);
    else localStorage.setItem(MUTE_KEY, String(Date.now() + MUTE_MS));
    this.update();
  },
  notify(alert) {
    if (config.wall || !("Notification" in window) || Notification.permission !== "granted") return;
    const severity = config.severities[alert.severity]?.label || alert.severity;
    new Notification(`${severity} — ${alert.title}`, {
      body: sensorOf(alert.sensor)?.name || alert.sensor,
      tag: `csu-alert-${alert.id}`,
      requireInteraction: alert.severity === "critical",
    });
  },
  notifyEscalation(escalation) {
    if (!escalation || config.wall || !("Notification" in window)) return;
    if (Notification.permission !== "granted") return;
    new Notification(T.ppms.title(escalation.school, pendingMinutes(escalation)), {
      body: T.ppms.board,
      tag: `csu-ppms-${escalation.key}`,
      requireInteraction: true,
    });
  },
};

// Browsers allow sound only after a gesture on the page: any click unlocks it.
document.addEventListener("pointerdown", () => alarm.unlock(), { capture: true });
document.addEventListener("keydown", () => alarm.unlock(), { capture: true });
alarm.muteButton?.addEventListener("click", () => alarm.toggleMute());
window.addEventListener("storage", (event) => event.key === MUTE_KEY && alarm.update());
setInterval(() => alarm.tick(), 1000);

const enableButton = $('[data-testid="enable-alerts"]');
enableButton?.addEventListener("click", async () => {
  alarm.unlock();
  let permission = "denied";
  if ("Notification" in window) {
    permission =
      Notification.permission === "default"
        ? await Notification.requestPermission()
        : Notification.permission;
  }
  enableButton.textContent = permission === "granted" ? T.enabled : T.soundOnly;
});

// --- Charts ---------------------------------------------------------------------------

const charts = config.charts.map((chart) => ({
  ...chart,
  node: document.getElementById(`chart-${chart.name}`),
  series: new Map(), // ref -> { t: [ms], y: [value], res: [ms between expected points] }
  timer: null,
}));

// Insert a null where two points are further apart than GAP_FACTOR times their
// resolution, so that Plotly (connectgaps: false) draws a gap, never a bridging line.
function gapped({ t, y, res }) {
  const xs = [];
  const ys = [];
  for (let i = 0; i < t.length; i += 1) {
    if (i > 0 && t[i] - t[i - 1] > GAP_FACTOR * Math.max(res[i], res[i - 1])) {
      xs.push(parisString(t[i - 1] + 1000));
      ys.push(null);
    }
    xs.push(parisString(t[i]));
    ys.push(y[i]);
  }
  return { x: xs, y: ys };
}

function drawChart(chart) {
  chart.timer = null;
  if (!window.Plotly || !chart.node || !chart.traces.length) return;
  const wall = config.wall;
  const traces = chart.traces.map((trace) => ({
    ...gapped(chart.series.get(trace.sensor) || { t: [], y: [], res: [] }),
    name: plotText(trace.name),
    type: "scatter",
    mode: "lines",
    connectgaps: false,
    // The name through %{fullData.name}: written in the template, a "%{…}" in it would run.
    hovertemplate: `%{y:.${chart.digits}f} ${chart.unit}<extra>%{fullData.name}</extra>`,
  }));
  const colour = wall ? "#e8eef5" : "#1b2733";
  const locale = chartLocale(LANG);
  const layout = {
    margin: { l: 48, r: 12, t: wall ? 8 : 28, b: 36 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: colour, size: wall ? 16 : 12 },
    separators: locale.separators,
    xaxis: {
      type: "date",
      title: { text: T.timeAxis },
      tickformat: "%H:%M",
      hoverformat: "%H:%M:%S",
      gridcolor: wall ? "#33475c" : "#e3e8ee",
    },
    yaxis: {
      title: { text: chart.unit },
      exponentformat: "none", // whole numbers, never "12,3k"
      separatethousands: true,
      gridcolor: wall ? "#33475c" : "#e3e8ee",
      rangemode: "tozero",
    },
    showlegend: !wall,
    // Above the plot, outside it: below, the time axis' title ran into it.
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "x unified",
    uirevision: chart.name, // keep the user's zoom across live updates
  };
  if (traces.every((trace) => !trace.x.length)) {
    // Nothing to draw: the six hours shown, and why they are empty.
    const now = Date.now();
    layout.xaxis.range = [parisString(now - WINDOW_MS), parisString(now)];
    layout.yaxis.range = [0, 1];
    layout.annotations = [
      {
        xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        text: T.chartEmpty, font: { size: wall ? 18 : 14, color: colour },
      },
    ];
  }
  window.Plotly.react(chart.node, traces, layout, {
    displaylogo: false,
    responsive: true,
    locale: locale.locale,
  });
}

function drawChartSoon(chart) {
  chart.timer ??= setTimeout(() => drawChart(chart), 2000);
}

async function loadChart(chart) {
  if (!chart.traces.length || !chart.node) return;
  if (!window.Plotly) {
    chart.node.textContent = T.chartUnavailable;
    return;
  }
  const to = new Date();
  const from = new Date(to - WINDOW_MS);
  const answers = await Promise.all(
    chart.traces.map((trace) => {
      const url = config.urls.readings.replace("{ref}", encodeURIComponent(trace.sensor));
      const query = new URLSearchParams({
        metric: chart.metric,
        bucket: BUCKET,
        from: from.toISOString(),
        to: to.toISOString(),
      });
      return api(`${url}?${query}`);
    }),
  );
  let points = 0;
  chart.traces.forEach((trace, index) => {
    const { ok, data } = answers[index];
    const series = { t: [], y: [], res: [] };
    for (const point of ok ? data.points : []) {
      series.t.push(Date.parse(point.t));
      series.y.push(point.avg * trace.scale);
      series.res.push(BUCKET_MS);
    }
    points += series.t.length;
    chart.series.set(trace.sensor, series);
  });
  chart.node.replaceChildren();
  if (answers.every((answer) => !answer.ok)) {
    chart.node.textContent = T.chartFailed;
    return;
  }
  if (!points) chart.node.dataset.empty = "true";
  drawChart(chart);
}

function appendToCharts(ref, metric, value, ts) {
  for (const chart of charts) {
    if (chart.metric !== metric) continue;
    const trace = chart.traces.find((candidate) => candidate.sensor === ref);
    const series = trace && chart.series.get(ref);
    if (!series) continue;
    const t = Date.parse(ts);
    if (series.t.length && t <= series.t[series.t.length - 1]) continue;
    series.t.push(t);
    series.y.push(value * trace.scale);
    // A sensor without a period: gaps are judged on the chart's bucket.
    series.res.push(trace.interval ? trace.interval * 1000 : BUCKET_MS);
    const oldest = Date.now() - WINDOW_MS;
    while (series.t.length && series.t[0] < oldest) {
      series.t.shift();
      series.y.shift();
      series.res.shift();
    }
    drawChartSoon(chart);
  }
}

const loadCharts = () => Promise.all(charts.map(loadChart));

// --- Live events ----------------------------------------------------------------------

function onReadings(items) {
  let kpis = false;
  for (const { sensor: ref, metric, ts, value } of items) {
    if (!inScope(ref)) continue; // another commune than the one selected
    if (!storeReading(ref, metric, value, ts)) continue;
    showLiveValue(ref, metric, value);
    appendToCharts(ref, metric, value, ts);
    if (KPI_KINDS.has(sensorOf(ref).kind)) kpis = true;
  }
  if (kpis) refreshKpisSoon();
}

function onAlert(event, alert) {
  if (!communeInScope(alert.commune.id)) return;
  const known = alerts.has(alert.id);
  upsertAlert({ ...alert, pushedAt: Date.now() });
  if (event === "opened" && !known && !alert.muted) alarm.notify(alert);
  refreshKpisSoon(); // a tile's headline follows its alerts (the river's step)
}

function onIncident(event, incident) {
  if (!communeInScope(incident.commune.id)) return;
  if (event === "merged") {
    incidents.delete(incident.id);
    drawConsole();
    return;
  }
  upsertIncident({ ...incident, pushedAt: Date.now() });
}

function onMessage(message) {
  if (message.type === "proposal") loadProposals();
  if (message.type === "readings") onReadings(message.items || []);
  else if (message.type === "alert") onAlert(message.event, message.alert);
  else if (message.type === "incident") onIncident(message.event, message.incident);
  else if (message.type === "ppms") onPpms(message);
  else if (message.type === "sensor" && inScope(message.sensor))
    map?.setState(message.sensor, message.event);
}

const indicator = $('[data-testid="connection"]');

function onState(state, reason) {
  indicator.dataset.state = state;
  indicator.textContent = T.connection[reason] || T.connection[state];
}

function catchUp() {
  // Events were missed while the socket was down: fetch the present again.
  loadProposals();
  loadAlerts();
  loadEscalations();
  loadLatest();
  refreshKpis();
  loadCharts();
}

// --- Start ----------------------------------------------------------------------------

const communeFilter = $('[data-role="commune-filter"]');
if (communeFilter) {
  $('[data-role="commune-submit"]', communeFilter).hidden = true;
  $("select", communeFilter).addEventListener("change", () => communeFilter.submit());
}

const clock = $("#clock");
if (clock) {
  const tick = () => (clock.textContent = clockFormat.format(new Date()));
  tick();
  setInterval(tick, 1000);
}

alarm.update();
loadProposals();
loadAlerts();
loadEscalations();
loadLatest();
loadCharts();
setInterval(refreshKpis, KPI_POLL_MS);
connectLive({
  url: liveUrl(config.urls.live),
  onMessage,
  onState,
  onOpen: ({ reconnected }) => reconnected && catchUp(),
});
