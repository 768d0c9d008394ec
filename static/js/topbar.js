// The top bar's PPMS badge, on every page of operators and admins: how many proposals
// (propositions de déclenchement) wait for a decision, a link to the PPMS board.
//
// Kept live by the page's websocket (static/js/live.js dispatches each message as a
// "csu-live" event); a page without one gets a socket of the badge's own.
import { connectLive, liveUrl } from "./live.js";

const PROPOSALS_URL = "/api/v1/ppms/proposals/?state=pending&limit=1";
const badge = document.getElementById("ppms-badge");

async function refresh() {
  try {
    const response = await fetch(PROPOSALS_URL, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) return;
    const { count } = await response.json();
    badge.querySelector("[data-field=count]").textContent = String(count);
    badge.hidden = !count;
  } catch {
    /* offline: the next event or reconnect refreshes */
  }
}

if (badge) {
  refresh();
  window.addEventListener("csu-live", (event) => {
    if (event.detail?.type === "proposal") refresh();
  });
  // Pages that open their socket do so as their module runs: after that, the badge
  // opens one only if the page has none.
  window.addEventListener("load", () => {
    if (window.csuLive) return;
    connectLive({
      url: liveUrl("/ws/live/"),
      onMessage: () => {}, // heard through the "csu-live" event
      onOpen: ({ reconnected }) => reconnected && refresh(),
    });
  });
}
