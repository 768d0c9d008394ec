// The PPMS service worker. Served at /ppms/sw.js by ppms.views.service_worker (its scope
// is /ppms/), which prepends `const CONFIG = {version, assets, start, pages, offline}`.
//
// - The shell (CONFIG.assets: CSS, JS, icons, with their static URLs) is cached at install,
//   one cache per version, and served cache first.
// - The director's pages (paths starting with one of CONFIG.pages) are served network
//   first, each good answer kept in the "csu-ppms-pages" cache; without network (or after
//   a few seconds of a network that does not answer) the kept copy is served, and the page
//   says it is offline. director.js also stores the first page visited, before this worker
//   controls it, and clears the pages at logout.
// - Everything else — the API, state.json, the operators' board, POSTs — goes to the
//   network untouched: reports made offline are queued and replayed by the page itself
//   (director.js), each with its client_id, so nothing here may send twice.
/* global CONFIG */
"use strict";

const SHELL_PREFIX = "csu-ppms-shell-";
const SHELL_CACHE = SHELL_PREFIX + CONFIG.version;
const PAGES_CACHE = "csu-ppms-pages";
const NETWORK_WAIT_MS = 4000;
const ASSETS = new Set(CONFIG.assets);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then((cache) => cache.addAll(CONFIG.assets))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((key) => key.startsWith(SHELL_PREFIX) && key !== SHELL_CACHE)
          .map((key) => caches.delete(key)),
      ))
      .then(() => self.clients.claim()),
  );
});

function isDirectorPage(url) {
  if (url.origin !== self.location.origin || url.pathname.endsWith(".json")) return false;
  return CONFIG.pages.some((prefix) => url.pathname.startsWith(prefix));
}

function offlinePage() {
  const html = `<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>CSU — PPMS</title></head>
<body style="font:18px/1.5 system-ui,sans-serif;margin:2rem"><h1>CSU — PPMS</h1>
<p data-testid="offline-page">${CONFIG.offline}</p></body></html>`;
  return new Response(html, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(() => resolve(null), ms));
}

async function page(event) {
  const request = event.request;
  const key = new URL(request.url).pathname;
  const cache = await caches.open(PAGES_CACHE);
  const network = fetch(request).then(async (response) => {
    // Only a real page: not the login page we were redirected to, not an error.
    if (response.ok && !response.redirected && response.type === "basic") {
      await cache.put(key, response.clone());
    }
    return response;
  });
  event.waitUntil(network.catch(() => null));
  const kept = (await cache.match(key, { ignoreSearch: true, ignoreVary: true }))
    || (await cache.match(CONFIG.start, { ignoreVary: true }));
  if (!kept) return network.catch(() => offlinePage());
  const fresh = await Promise.race([network.catch(() => null), wait(NETWORK_WAIT_MS)]);
  return fresh || kept;
}

async function asset(request) {
  const cache = await caches.open(SHELL_CACHE);
  const kept = await cache.match(request, { ignoreVary: true });
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate" && isDirectorPage(url)) {
    event.respondWith(page(event));
  } else if (url.origin === self.location.origin && ASSETS.has(url.pathname)) {
    event.respondWith(asset(request));
  }
});

// --- Web Push: the CSU tells a phone even when the page is closed ---------------------
//
// The payload (ppms/notify.py): {title, body, tag, url, silent, event, activation,
// school, receipt: {id, token}}. An intrusion's push is silent: no sound, no vibration, as the page is — a
// phone that rings could betray people in hiding.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { title: "CSU", body: event.data ? event.data.text() : "" };
  }
  const silent = Boolean(message.silent);
  const options = {
    body: message.body || "",
    tag: message.tag || "csu-ppms",
    renotify: !silent,
    requireInteraction: !silent,
    silent,
    // A silent notification must not name a vibration, not even an empty one: the
    // browser refuses it (TypeError) and shows nothing.
    ...(silent ? {} : { vibrate: [400, 200, 400, 200, 800] }),
    data: { url: message.url || CONFIG.start, event: message.event || "" },
    lang: "fr",
  };
  // Shown, then said received (the push's own id and token: the board's "who was told
  // how"); a receipt lost offline changes nothing for the director.
  const receipt = message.receipt
    ? fetch(CONFIG.received, {
        method: "POST",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(message.receipt),
      }).catch(() => null)
    : null;
  event.waitUntil(
    Promise.all([self.registration.showNotification(message.title || "CSU — PPMS", options), receipt]),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || CONFIG.start, self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((client) => new URL(client.url).pathname === url.pathname);
      return open ? open.focus() : self.clients.openWindow(url.href);
    }),
  );
});
