// The /ws/live/ client (its messages: core/live.py): connect, reconnect with backoff, and
// tell the page its connection state so it can show it and catch up after a reconnect.
//
//   connectLive({ url, onMessage, onState, onOpen })
//     onMessage(message)            every JSON message from the server
//     onState(state, reason)        "connected" | "reconnecting" | "offline"; reason:
//                                   "connecting" (first attempt), "network",
//                                   "unauthenticated" or ""
//     onOpen({ reconnected })       each time the socket opens; reconnected is true
//                                   after a loss, when the page must refetch what it missed
//
// "offline" means the browser says it has no network, the session expired (close code
// 4401: no point retrying) or lost its second factor (4428: an admin reset it), or
// several attempts in a row failed; the client keeps retrying in the last case, every
// 30 s at most. Close code 4403 (what the user may see changed) is a loss like any
// other: the socket reopens with the user's rights of now.
//
// Every message is also dispatched on window as a "csu-live" event (detail: the message),
// and window.csuLive is set once a socket is asked for: the top bar's badge
// (static/js/topbar.js) listens to the page's socket rather than opening its own.

const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_SECOND_FACTOR_MISSING = 4428;
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const ATTEMPTS_BEFORE_OFFLINE = 4;

export function liveUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export function connectLive({ url, onMessage, onState = () => {}, onOpen = () => {} }) {
  let socket = null;
  let failures = 0;
  let opened = false; // has it ever been open?
  let timer = null;
  let stopped = false;

  function setState(state, reason = "") {
    onState(state, reason);
  }

  function open() {
    clearTimeout(timer);
    timer = null;
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      failures = 0;
      setState("connected");
      onOpen({ reconnected: opened });
      opened = true;
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to judge: skip what is not JSON
      }
      onMessage(message);
      window.dispatchEvent(new CustomEvent("csu-live", { detail: message }));
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_SECOND_FACTOR_MISSING) {
        stopped = true;
        setState("offline", "unauthenticated");
        return;
      }
      if (!stopped) retry();
    });
  }

  function retry() {
    failures += 1;
    // Exponential backoff with jitter, so a restarted server is not hit by every
    // browser at the same instant.
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (failures - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    const offline = !navigator.onLine || failures > ATTEMPTS_BEFORE_OFFLINE;
    setState(offline ? "offline" : "reconnecting", offline ? "network" : "");
    timer = setTimeout(open, delay);
  }

  window.addEventListener("online", () => {
    if (stopped) return;
    if (socket && socket.readyState === WebSocket.OPEN) {
      setState("connected"); // the socket survived the blip
    } else if (socket === null) {
      // The network is back: try now rather than at the end of the backoff.
      failures = 0;
      setState("reconnecting");
      open();
    }
  });
  window.addEventListener("offline", () => {
    if (!stopped) setState("offline", "network");
  });

  window.csuLive = true;
  setState("reconnecting", "connecting");
  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
