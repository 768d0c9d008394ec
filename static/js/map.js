// The dashboard's SVG map (drawn by the server from the coordinates): tooltips on
// hover, focus and click, and the live state of each sensor.
//
//   const map = createMap(svg, tooltip, { describe })
//     describe(node) -> { title, lines: [string], link: { href, text } | null }
//     map.setStates({ ref: "online" | "offline" | "unknown" })   the sensors' own state
//     map.setState(ref, state)
//     map.setAlerting(Set of refs)                               drawn as "alert" above all
//
// Without JavaScript each sensor is a plain link to its page with a native <title>.

export function createMap(svg, tooltip, { describe }) {
  const frame = tooltip.parentElement;
  const sensors = new Map();
  for (const node of svg.querySelectorAll("[data-sensor]")) {
    // data-state is what is drawn; data-sensor-state the sensor's own state under an alert.
    sensors.set(node.dataset.sensor, { node, state: node.dataset.sensorState });
  }
  let alerting = new Set(
    [...svg.querySelectorAll('[data-sensor][data-state="alert"]')].map((n) => n.dataset.sensor),
  );
  let pinned = null;

  function draw(ref) {
    const entry = sensors.get(ref);
    if (entry) entry.node.dataset.state = alerting.has(ref) ? "alert" : entry.state;
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

  svg.addEventListener("pointerover", (event) => {
    const node = target(event);
    if (node && !pinned) show(node);
  });
  svg.addEventListener("pointerout", (event) => {
    if (!pinned && target(event) && !target(event).contains(event.relatedTarget)) {
      tooltip.hidden = true;
    }
  });
  svg.addEventListener("focusin", (event) => {
    const node = target(event);
    if (node) show(node);
  });
  svg.addEventListener("focusout", () => {
    if (!pinned) tooltip.hidden = true;
  });
  svg.addEventListener("click", (event) => {
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
