// The dashboard's map: Leaflet over the tile server's base map when the server offers
// one (the #map-layers data, dashboard/tiles.py), else the SVG drawn by the server from
// the coordinates, which is also the fallback when the browser cannot load the tiles.
// Tooltips on hover, focus and click, and the live state of each sensor, on both.
//
//   const map = createMap(frame, tooltip, { describe })
//     frame: [data-testid="map"], holding the drawing and the Leaflet view
//     describe(node) -> { title, lines: [string], link: { href, text } | null }
//     map.setStates({ ref: "online" | "offline" | "unknown" })   the sensors' own state
//     map.setState(ref, state)
//     map.setAlerting(Set of refs)                               drawn as "alert" above all
//
// Without JavaScript the drawing stays, each sensor a plain link to its page with a
// native <title>.

import { gettext } from "./i18n.js";

const LABELS_FROM_ZOOM = 16; // the names written next to the markers from this zoom on

function pin(tag, className, data, label) {
  const node = document.createElement(tag);
  node.className = `pin ${className}`;
  Object.assign(node.dataset, data);
  const shape = document.createElement("span");
  shape.className = "shape";
  shape.setAttribute("aria-hidden", "true");
  const text = document.createElement("span");
  text.className = "pin-label";
  text.textContent = label;
  node.append(shape, text);
  return node;
}

// Leaflet in the frame, from the layers' data; calls fallBack() once if no tile loads.
function startLeaflet(frame, layers, fallBack) {
  const view = frame.querySelector(".map-tiles-view");
  frame.dataset.view = "tiles";
  const leaflet = window.L.map(view, { zoomSnap: 0.5, zoomControl: false });
  window.L.control
    .zoom({ zoomInTitle: gettext("Zoomer"), zoomOutTitle: gettext("Dézoomer") })
    .addTo(leaflet);
  leaflet.attributionControl.setPrefix(false);
  const base = window.L.tileLayer(layers.tiles.url, {
    attribution: layers.tiles.attribution,
    maxZoom: 19,
    crossOrigin: false,
  });
  let loaded = false;
  base.on("tileload", () => {
    loaded = true;
  });
  base.on("tileerror", () => {
    if (loaded || frame.dataset.view !== "tiles") return;
    leaflet.remove();
    view.replaceChildren();
    frame.dataset.view = "drawing";
    fallBack();
  });
  base.addTo(leaflet);
  for (const zone of layers.zones) {
    window.L.polygon(zone.rings, {
      className: `zone zone-${zone.type}`,
      opacity: 1,
      fillOpacity: 1,
      weight: 1.5,
    })
      .bindTooltip(`${zone.name} — ${zone.commune} (${zone.type_label})`, { sticky: true })
      .addTo(leaflet);
  }
  const marker = (at, node) =>
    window.L.marker(at, {
      icon: window.L.divIcon({ className: "pin-icon", html: node, iconSize: [24, 24] }),
      keyboard: false,
      interactive: false,
    }).addTo(leaflet);
  for (const school of layers.schools) {
    const node = pin(
      "span",
      "school",
      { school: school.uai, name: school.name, pupils: school.pupils },
      school.name,
    );
    node.tabIndex = 0;
    node.setAttribute("role", "button");
    node.setAttribute("aria-label", school.name);
    marker(school.at, node);
  }
  for (const shelter of layers.shelters) {
    const node = pin("span", "shelter", { shelter: shelter.id, open: shelter.open }, shelter.label);
    node.title = shelter.label;
    marker(shelter.at, node);
  }
  for (const sensor of layers.sensors) {
    const node = pin(
      "a",
      `sensor kind-${sensor.kind}`,
      {
        sensor: sensor.ref,
        kind: sensor.kind,
        state: sensor.state,
        sensorState: sensor.sensor_state,
      },
      sensor.name,
    );
    node.href = sensor.url;
    node.setAttribute("aria-label", `${sensor.name} — ${sensor.kind_label}`);
    marker(sensor.at, node);
  }
  const labels = () => frame.classList.toggle("labels", leaflet.getZoom() >= LABELS_FROM_ZOOM);
  leaflet.on("zoomend", labels);
  leaflet.fitBounds(layers.bounds);
  labels();
  // The panel changes size after the start (the PPMS strip appears on the wall, a window is
  // resized): Leaflet follows, and fits the map again until the operator moves it.
  let moved = false;
  for (const type of ["pointerdown", "wheel", "keydown"]) {
    view.addEventListener(type, () => (moved = true), { passive: true });
  }
  new ResizeObserver(() => {
    if (frame.dataset.view !== "tiles") return;
    leaflet.invalidateSize();
    if (!moved) leaflet.fitBounds(layers.bounds);
  }).observe(view);
}

export function createMap(frame, tooltip, { describe }) {
  const layers = document.getElementById("map-layers");
  if (layers && window.L) {
    startLeaflet(frame, JSON.parse(layers.textContent), () => {
      // Logged once, as information: the drawing is a planned state, not an error.
      console.info("CSU map: the tile server does not answer; the map drawn instead.");
      hide();
    });
  }
  const sensors = new Map();
  for (const node of frame.querySelectorAll("[data-sensor]")) {
    // data-state is what is drawn; data-sensor-state the sensor's own state under an alert.
    const entry = sensors.get(node.dataset.sensor);
    if (entry) entry.nodes.push(node);
    else sensors.set(node.dataset.sensor, { nodes: [node], state: node.dataset.sensorState });
  }
  let alerting = new Set(
    [...frame.querySelectorAll('[data-sensor][data-state="alert"]')].map((n) => n.dataset.sensor),
  );
  let pinned = null;

  function draw(ref) {
    const entry = sensors.get(ref);
    if (!entry) return;
    for (const node of entry.nodes) node.dataset.state = alerting.has(ref) ? "alert" : entry.state;
  }

  function show(node) {
    const { title, lines, link } = describe(node);
    tooltip.replaceChildren();
    const heading = document.createElement("strong");
    heading.textContent = title;
    tooltip.append(heading);
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      tooltip.append(p);
    }
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      tooltip.append(a);
    }
    tooltip.hidden = false;
    const box = node.getBoundingClientRect();
    const outer = frame.getBoundingClientRect();
    const left = box.left - outer.left + box.width / 2;
    const top = box.top - outer.top + box.height + 6;
    // Keep it inside the frame: flip to the left or above near the edges.
    tooltip.style.left = `${Math.min(left, outer.width - tooltip.offsetWidth - 4)}px`;
    tooltip.style.top =
      top + tooltip.offsetHeight > outer.height
        ? `${Math.max(box.top - outer.top - tooltip.offsetHeight - 6, 0)}px`
        : `${top}px`;
  }

  function hide() {
    tooltip.hidden = true;
    pinned = null;
  }

  const target = (event) => event.target.closest?.("[data-sensor], [data-school]");

  frame.addEventListener("pointerover", (event) => {
    const node = target(event);
    if (node && !pinned) show(node);
  });
  frame.addEventListener("pointerout", (event) => {
    if (!pinned && target(event) && !target(event).contains(event.relatedTarget)) {
      tooltip.hidden = true;
    }
  });
  frame.addEventListener("focusin", (event) => {
    const node = target(event);
    if (node) show(node);
  });
  frame.addEventListener("focusout", () => {
    if (!pinned) tooltip.hidden = true;
  });
  frame.addEventListener("click", (event) => {
    const node = target(event);
    if (!node) return hide();
    // A first click (or tap) shows the details; the tooltip holds the link.
    event.preventDefault();
    if (pinned === node) return hide();
    pinned = node;
    show(node);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hide();
  });
  document.addEventListener("click", (event) => {
    if (pinned && !frame.contains(event.target)) hide();
  });

  return {
    setStates(states) {
      for (const [ref, state] of Object.entries(states)) this.setState(ref, state);
    },
    setState(ref, state) {
      const entry = sensors.get(ref);
      if (!entry) return;
      entry.state = state;
      draw(ref);
    },
    setAlerting(refs) {
      const before = alerting;
      alerting = new Set(refs);
      for (const ref of new Set([...before, ...alerting])) draw(ref);
    },
  };
}
