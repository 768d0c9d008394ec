/*
 * The sensor page: one Plotly chart per metric, from the readings API, kept live by
 * the websocket /ws/live/ (core/live.py). Self-contained on purpose: the
 * dashboard has its own live script.
 *
 * Gaps: a line is broken (a null point, connectgaps false) where two consecutive
 * points are further apart than GAP_FACTOR x max(bucket, expected interval), so a
 * silent sensor shows as a hole, not as a straight line across the silence.
 */
import { TZ, chartLocale, parisString } from "./chart_locale.js";
import { gettext } from "./i18n.js";
import { connectLive, liveUrl } from "./live.js";
import { plotText } from "./plot_text.js";

(function () {
  "use strict";

  const dataNode = document.getElementById("sensor-data");
  if (!dataNode || typeof Plotly === "undefined") return;
  const data = JSON.parse(dataNode.textContent);
  const L = {
    ...data.labels, // states, alert_states, severities: the choices' words
    avg: gettext("moyenne"),
    band: gettext("min – max"),
    value: gettext("valeur"),
    loading: gettext("Chargement…"),
    no_data: gettext("Aucune mesure sur cette période."),
    error: gettext("Impossible de charger les mesures."),
    live: gettext("En direct"),
    reconnecting: gettext("Connexion perdue, nouvelle tentative…"),
    signed_out: gettext("Session terminée\u202f: rechargez la page pour vous reconnecter."),
    bad_range: gettext("La fin doit suivre le début."),
  };
  const lang = document.documentElement.lang || "fr";

  const BUCKET_SECONDS = { raw: 0, "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };
  // Preset ranges: their span in seconds and the bucket they are drawn with.
  const PRESETS = {
    "1h": [3600, "raw"],
    "24h": [86400, "5m"],
    "7d": [7 * 86400, "1h"],
    "30d": [30 * 86400, "1h"],
  };
  const GAP_FACTOR = 2.5;
  const MAX_RAW_POINTS = 5000; // custom ranges: beyond, use buckets
  const MAX_BUCKETS = 2000;
  const COLOUR = "#0b5cad";
  const BAND = "rgba(11, 92, 173, 0.18)";
  const DASH = { threshold: "solid", threshold_high: "solid", clear_threshold: "dot", clear_threshold_high: "dot" };

  const metrics = {};
  for (const metric of data.metrics) metrics[metric.name] = metric;

  const view = { range: "24h", from: null, to: null, bucket: "5m", generation: 0 };
  const series = {}; // metric -> {bucket, points: [{t: Date, v} | {t: Date, avg, min, max, count}]}
  const pendingDraws = new Set();

  const numberFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 3 });
  function valueFormat(metric) {
    return new Intl.NumberFormat(lang, {
      minimumFractionDigits: metric.digits, maximumFractionDigits: metric.digits,
    });
  }
  const timeFormat = new Intl.DateTimeFormat(lang, {
    dateStyle: "short", timeStyle: "medium", timeZone: TZ,
  });
  const locale = chartLocale(lang);

  // --- Helpers ------------------------------------------------------------------------

  function pad(n, width) {
    return String(n).padStart(width || 2, "0");
  }

  // Plotly draws date strings as wall-clock times: Paris time, whatever the browser's zone.
  const plotlyTime = parisString;

  // The value of an <input type="datetime-local">, in local time.
  function inputTime(date) {
    return (
      date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" +
      pad(date.getHours()) + ":" + pad(date.getMinutes())
    );
  }

  function chooseBucket(spanSeconds) {
    // Raw points only when the period says how many there are (none known: buckets).
    const period = data.expected_interval;
    if (period && spanSeconds <= 6 * 3600 && spanSeconds / period <= MAX_RAW_POINTS) return "raw";
    for (const bucket of ["1m", "5m", "1h"]) {
      if (spanSeconds / BUCKET_SECONDS[bucket] <= MAX_BUCKETS) return bucket;
    }
    return "1d";
  }

  function gapLimitMs(bucket) {
    // Raw points of a sensor without a period: no gap can be told from a pause.
    if (!data.expected_interval && bucket === "raw") return Infinity;
    return GAP_FACTOR * Math.max(BUCKET_SECONDS[bucket], data.expected_interval || 0) * 1000;
  }

  // The points with a null between those too far apart: [point | null, ...].
  function withGaps(points, bucket) {
    const limit = gapLimitMs(bucket);
    const out = [];
    let previous = null;
    for (const point of points) {
      if (previous && point.t - previous.t > limit) {
        out.push({ t: new Date((previous.t.getTime() + point.t.getTime()) / 2), gap: true });
      }
      out.push(point);
      previous = point;
    }
    return out;
  }

  function queryParams(metric, extra) {
    const params = new URLSearchParams({
      metric: metric,
      from: view.from.toISOString(),
      to: view.to.toISOString(),
      bucket: view.bucket,
    });
    for (const key in extra) params.set(key, extra[key]);
    return params.toString();
  }

  // --- The range ----------------------------------------------------------------------

  function setPreset(range) {
    const [span, bucket] = PRESETS[range];
    view.range = range;
    view.to = new Date();
    view.from = new Date(view.to.getTime() - span * 1000);
    view.bucket = bucket;
  }

  function setCustom(from, to) {
    view.range = "custom";
    view.from = from;
    view.to = to;
    view.bucket = chooseBucket((to - from) / 1000);
  }

  function rangeFromLocation() {
    const params = new URLSearchParams(location.search);
    const from = params.get("from") ? new Date(params.get("from")) : null;
    const to = params.get("to") ? new Date(params.get("to")) : null;
    if (from && to && !isNaN(from) && !isNaN(to) && from < to) {
      setCustom(from, to);
    } else {
      setPreset(PRESETS[params.get("range")] ? params.get("range") : "24h");
    }
  }

  function rememberRange() {
    const params = new URLSearchParams();
    if (view.range === "custom") {
      params.set("from", view.from.toISOString());
      params.set("to", view.to.toISOString());
    } else {
      params.set("range", view.range);
    }
    history.replaceState(null, "", "?" + params.toString());
  }

  function showRange() {
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === view.range));
    }
    const form = document.getElementById("custom-range");
    if (form) {
      form.elements.from.value = inputTime(view.from);
      form.elements.to.value = inputTime(view.to);
      form.classList.toggle("active", view.range === "custom");
    }
    for (const link of document.querySelectorAll("[data-export-format]")) {
      const metric = link.closest("figure").querySelector(".chart").dataset.metric;
      link.href = data.export_url + "?" + queryParams(metric, { format: link.dataset.exportFormat });
    }
  }

  function changeRange(apply) {
    apply();
    rememberRange();
    showRange();
    loadAll();
  }

  // --- Loading and drawing ------------------------------------------------------------

  function loadAll() {
    view.generation += 1;
    for (const name in metrics) load(name, view.generation);
  }

  function load(metric, generation) {
    const element = document.getElementById("chart-" + metric);
    element.classList.add("loading");
    fetch(data.readings_url + "?" + queryParams(metric), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (body) {
        if (generation !== view.generation) return; // a newer range was chosen
        series[metric] = {
          bucket: body.bucket,
          points: body.points.map(function (p) {
            return body.bucket === "raw"
              ? { t: new Date(p.t), v: p.v }
              : { t: new Date(p.t), avg: p.avg, min: p.min, max: p.max, count: p.count };
          }),
        };
        element.classList.remove("loading", "failed");
        draw(metric);
      })
      .catch(function () {
        if (generation !== view.generation) return;
        delete series[metric];
        element.classList.remove("loading");
        element.classList.add("failed");
        draw(metric, L.error);
      });
  }

  function thresholdShapes(metric) {
    const shapes = [];
    const annotations = [];
    // By value, their labels on alternate sides: a threshold and its clearing line, a
    // few centimetres apart, never write over each other.
    const lines = data.thresholds
      .filter(function (line) { return line.metric === metric; })
      .sort(function (a, b) { return a.value - b.value; });
    lines.forEach(function (line, index) {
      const right = index % 2 === 0;
      shapes.push({
        type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: line.value, y1: line.value,
        line: { color: line.colour, width: 1.5, dash: DASH[line.line] || "dash" },
      });
      annotations.push({
        xref: "paper", x: right ? 1 : 0, xanchor: right ? "right" : "left",
        yref: "y", y: line.value, yanchor: "bottom",
        text: plotText(line.label), showarrow: false, font: { size: 11, color: line.colour },
        bgcolor: "rgba(255, 255, 255, 0.85)",
      });
    });
    return { shapes: shapes, annotations: annotations };
  }

  function traces(metric, current) {
    const unit = metrics[metric].unit;
    const points = withGaps(current.points, current.bucket);
    const x = points.map(function (p) { return plotlyTime(p.t); });
    const shape = metrics[metric].is_state ? "hv" : "linear";
    if (current.bucket === "raw") {
      return [{
        x: x, y: points.map(function (p) { return p.gap ? null : p.v; }),
        type: "scatter", mode: points.length < 200 ? "lines+markers" : "lines",
        name: L.value, connectgaps: false, line: { color: COLOUR, width: 2, shape: shape },
        marker: { size: 4 }, hovertemplate: "%{y} " + unit + "<extra></extra>",
      }];
    }
    const pick = function (key) {
      return points.map(function (p) { return p.gap ? null : p[key]; });
    };
    return [
      {
        x: x, y: pick("min"), type: "scatter", mode: "lines", line: { width: 0, shape: shape },
        connectgaps: false, hoverinfo: "skip", showlegend: false, name: "min",
      },
      {
        x: x, y: pick("max"), type: "scatter", mode: "lines", line: { width: 0, shape: shape },
        fill: "tonexty", fillcolor: BAND, connectgaps: false, hoverinfo: "skip", name: L.band,
      },
      {
        x: x, y: pick("avg"), type: "scatter", mode: "lines", name: L.avg, connectgaps: false,
        line: { color: COLOUR, width: 2, shape: shape },
        customdata: points.map(function (p) { return p.gap ? null : [p.min, p.max, p.count]; }),
        hovertemplate: "%{y} " + unit + " (%{customdata[0]} – %{customdata[1]}, n = %{customdata[2]})<extra></extra>",
      },
    ];
  }

  function draw(metric, message) {
    const element = document.getElementById("chart-" + metric);
    const current = series[metric];
    const lines = thresholdShapes(metric);
    if (!current || !current.points.length) {
      lines.annotations.push({
        xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        text: message || (current ? L.no_data : L.loading), font: { size: 14, color: "#5b6b7a" },
      });
    }
    const layout = {
      height: 260,
      margin: { l: 55, r: 10, t: 10, b: 35 },
      separators: locale.separators,
      showlegend: !!current && current.bucket !== "raw" && current.points.length > 0,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      xaxis: {
        type: "date",
        range: [plotlyTime(view.from), plotlyTime(view.to)],
        tickformatstops: locale.tickformatstops,
        hoverformat: locale.hoverformat,
      },
      // Whole numbers with their thousands apart, never "12,3k".
      yaxis: {
        title: { text: metrics[metric].unit }, zeroline: false,
        exponentformat: "none", separatethousands: true,
        // Never below what the quantity can be (no negative µg/m³ under a flat line).
        rangemode: metrics[metric].minimum >= 0 ? "nonnegative" : "normal",
      },
      shapes: lines.shapes,
      annotations: lines.annotations,
      // Keep the user's zoom while live points arrive; reset it with a new range.
      uirevision: view.generation,
    };
    Plotly.react(element, current ? traces(metric, current) : [], layout, {
      locale: locale.locale,
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["lasso2d", "select2d"],
    });
  }

  function drawSoon(metric) {
    if (pendingDraws.has(metric)) return;
    pendingDraws.add(metric);
    requestAnimationFrame(function () {
      pendingDraws.delete(metric);
      draw(metric);
    });
  }

  // --- Live ---------------------------------------------------------------------------

  function slideWindow() {
    const span = PRESETS[view.range][0] * 1000;
    view.to = new Date();
    view.from = new Date(view.to.getTime() - span);
  }

  function append(item) {
    const current = series[item.metric];
    if (!current || view.range === "custom") return;
    const t = new Date(item.ts);
    const points = current.points;
    const last = points[points.length - 1];
    if (current.bucket === "raw") {
      if (last && t <= last.t) return; // coalesced pushes: never older than what we have
      points.push({ t: t, v: item.value });
    } else {
      // Buckets start on multiples of their length since the epoch, as in the API.
      const size = BUCKET_SECONDS[current.bucket] * 1000;
      const start = Math.floor(t.getTime() / size) * size;
      if (last && last.t.getTime() === start) {
        last.avg = (last.avg * last.count + item.value) / (last.count + 1);
        last.min = Math.min(last.min, item.value);
        last.max = Math.max(last.max, item.value);
        last.count += 1;
      } else if (!last || start > last.t.getTime()) {
        points.push({ t: new Date(start), avg: item.value, min: item.value, max: item.value, count: 1 });
      } else {
        return;
      }
    }
    slideWindow();
    const first = view.from.getTime() - BUCKET_SECONDS[current.bucket] * 1000;
    while (points.length && points[0].t.getTime() < first) points.shift();
    drawSoon(item.metric);
  }

  function showLatest(item) {
    const row = document.querySelector('[data-testid="latest-' + item.metric + '"]');
    if (!row) return;
    const when = new Date(item.ts);
    const metric = metrics[item.metric];
    // Rounded as the server rendered it (Metric.digits), so a live value reads alike.
    row.querySelector(".value").textContent = metric
      ? valueFormat(metric).format(item.value) + "\u00a0" + metric.unit
      : numberFormat.format(item.value);
    const cell = row.querySelector(".time");
    cell.textContent = "";
    const time = document.createElement("time");
    time.dateTime = when.toISOString();
    time.textContent = timeFormat.format(when);
    cell.appendChild(time);
  }

  function showSensorState(state) {
    const badge = document.getElementById("sensor-state");
    if (!badge) return;
    badge.className = "badge state-" + state;
    badge.textContent = L.states[state] || state;
  }

  function cell(row, className, text) {
    const td = document.createElement("td");
    td.className = className;
    if (text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function badge(className, text) {
    const span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }

  function formatTime(iso) {
    return iso ? timeFormat.format(new Date(iso)) : "—";
  }

  function showAlert(alert) {
    const body = document.querySelector("#alert-history tbody");
    if (!body) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    let row = body.querySelector('tr[data-alert-id="' + alert.id + '"]');
    const fresh = !row;
    if (fresh) row = document.createElement("tr");
    row.textContent = "";
    row.dataset.alertId = alert.id;
    const link = document.createElement("a");
    link.href = data.alert_url.replace("{id}", alert.id);
    link.textContent = alert.id;
    cell(row, "").appendChild(link);
    const title = cell(row, "", alert.title);
    title.appendChild(document.createElement("br"));
    const rule = document.createElement("small");
    rule.className = "muted";
    rule.textContent = alert.rule ? alert.rule.name : "";
    title.appendChild(rule);
    cell(row, "severity").appendChild(badge("sev-" + alert.severity, L.severities[alert.severity] || alert.severity));
    cell(row, "state").appendChild(badge("alert-" + alert.state, L.alert_states[alert.state] || alert.state));
    cell(row, "opened", formatTime(alert.opened_at));
    cell(row, "resolved", formatTime(alert.resolved_at));
    cell(row, "peak", alert.peak_value === null ? "—" : numberFormat.format(alert.peak_value));
    if (fresh) {
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > 50) body.deleteRow(body.rows.length - 1);
    }
  }

  function onMessage(message) {
    if (message.type === "readings") {
      for (const item of message.items || []) {
        if (item.sensor !== data.sensor) continue;
        showLatest(item);
        append(item);
      }
    } else if (message.type === "sensor" && message.sensor === data.sensor) {
      showSensorState(message.event);
    } else if (message.type === "alert" && message.alert && message.alert.sensor === data.sensor) {
      showAlert(message.alert);
    }
  }

  function setStatus(text, ok) {
    const status = document.getElementById("live-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("live", !!ok);
  }

  function connect() {
    connectLive({
      url: liveUrl(data.live_path),
      onMessage,
      onState(state, reason) {
        if (reason === "unauthenticated") {
          // Signed out: a reload leads to the login page.
          setStatus(L.signed_out, false);
        } else {
          setStatus(state === "connected" ? L.live : L.reconnecting, state === "connected");
        }
      },
      onOpen({ reconnected }) {
        // What arrived while we were away comes from the readings API.
        if (reconnected) {
          if (view.range !== "custom") setPreset(view.range);
          showRange();
          loadAll();
        }
      },
    });
  }

  // --- Start --------------------------------------------------------------------------

  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", function () {
      changeRange(function () { setPreset(button.dataset.range); });
    });
  }
  const form = document.getElementById("custom-range");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const from = new Date(form.elements.from.value);
      const to = new Date(form.elements.to.value);
      if (isNaN(from) || isNaN(to) || from >= to) {
        form.elements.to.setCustomValidity(L.bad_range);
        form.reportValidity();
        return;
      }
      form.elements.to.setCustomValidity("");
      changeRange(function () { setCustom(from, to); });
    });
    form.elements.to.addEventListener("input", function () {
      form.elements.to.setCustomValidity("");
    });
  }

  rangeFromLocation();
  showRange();
  for (const name in metrics) draw(name);
  loadAll();
  if ("WebSocket" in window) connect();
})();
