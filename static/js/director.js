// The school director's PPMS page: /ppms/ecole/ and /ppms/school/<uai>/ (templates/ppms/).
//
// Stable test ids (browser tests):
//   director-page        the page; data-school="<uai>"
//   ppms-banner          the activation banner: data-activation (id), data-scenario,
//                        data-silent ("true" for an intrusion: no sound, no vibration, shown
//                        discreetly), data-drill; hidden when nothing is under way
//   banner-plan          the school's plan for that posture (plan-places, plan-assembly,
//                        plan-instructions)
//   calm-screen          "Aucun déclenchement en cours"; btn-sound-test plays the signal once
//   ended-banner         shown at once on the live "ended" event, or "cancelled" (the
//                        activation was a mistake: data-cancelled="true"); btn-ended-close
//                        hides it
//   status-form          the report, in the order a director fills it: the counts
//                        (field-pupils_present, field-pupils_absent, field-pupils_missing,
//                        field-pupils_injured, field-adults_present, field-adults_absent,
//                        field-adults_missing, field-adults_injured; pupils-uncounted and
//                        adults-uncounted, in amber, when présents + absents + manquants is
//                        not the roll: a warning, the send goes), field-posture,
//                        field-location, field-needs (no-names-warning above them), then the
//                        situation (btn-safe, btn-help, btn-evacuated choose it,
//                        aria-pressed) and btn-send under them all: "Envoyer", then
//                        "Renvoyer avec ces effectifs" once the school has answered
//   btn-add-group        adds a group of pupils in another place (extra-groups): each a
//                        fieldset data-group="<n>" (from 2; the fields above are group 1,
//                        titled group-1-title once there are several) with its counts,
//                        posture and place (inputs data-name="<field>"), data-action=
//                        "remove-group"; sent as "groups", the amber warnings on their sums
//   vigicrues            a flood's Vigicrues colour, if the operators gave it (data-colour)
//   directory            the school's crisis directory (roles and numbers)
//   error-<field>        a field's message from a 400, next to it and scrolled into view;
//                        error-state, form-error the others
//   current-state        the state the server last acknowledged (data-state)
//   status-result        "Envoyé au CSU à HH:MM", or why not
//   queued-indicator     "En attente de réseau — envoi automatique" while reports wait
//   offline-indicator    the network is down (the page may come from the offline cache)
//   live-indicator       the websocket is down and reconnecting
//   btn-mute             stops the sound signal
//   btn-alarm            opens alarm-form: field-alarm-scenario, field-alarm-message,
//                        btn-alarm-send, btn-alarm-cancel; alarm-result, alarm-error,
//                        error-alarm-scenario, error-alarm-message
//   other-activations    other activations concerning the school at the same time
//   plan-summary         the school's plan for every posture
//   school-choice        (directors of several schools) links with data-school, data-active
//
// Offline and replay: a report goes first into an outbox kept in localStorage, with its
// own client_id (a UUID), and is then sent. The outbox is replayed, in order, on load, on
// the "online" event, after a websocket reconnect and every 15 s while it is not empty.
// An item leaves the outbox only when the server has answered (2xx; or a 400/403/404 that
// a replay cannot fix, shown to the director): a report is never lost, and a replay after
// a lost answer carries the same client_id, so the server records it once.
//
// Silence: nothing here makes a sound or vibrates while any activation concerning the
// school is an intrusion (activation.silent) — hidden people must not be betrayed
// (the lesson of the state's SAIP app). No system notification is ever shown.
(function () {
  "use strict";

  const OUTBOX_KEY = "csu-ppms-outbox";
  const RUNG_KEY = "csu-ppms-rung";
  const PAGES_CACHE = "csu-ppms-pages";
  const RETRY_MS = 15000;
  const RING_SECONDS = 30;
  const VIBRATION = [600, 300, 600, 300, 600, 300, 600];
  const COUNTS = [
    "pupils_present", "pupils_absent", "pupils_missing", "pupils_injured",
    "adults_present", "adults_absent", "adults_missing", "adults_injured",
  ];
  const ROLL = {
    pupils: ["pupils_present", "pupils_absent", "pupils_missing"],
    adults: ["adults_present", "adults_absent", "adults_missing"],
  };

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  const dataNode = document.getElementById("ppms-data");
  const chooser = document.querySelector("[data-testid=school-choice]");
  if (!dataNode && !chooser) return;
  const page = dataNode ? JSON.parse(dataNode.textContent) : JSON.parse($("#ppms-choice-data").textContent);
  // The page's words, from Django's JavaScript catalogue (/jsi18n/, loaded before this
  // script; locale/*/djangojs.po). Without it (offline, not cached), the French stays.
  const gettext = (text) => (window.django && window.django.gettext ? window.django.gettext(text) : text);
  const T = {
    group: gettext("Groupe %(n)s"),
    queued: gettext("En attente de réseau — envoi automatique"),
    queued_n: gettext("%(n)s envois en attente de réseau — envoi automatique"),
    sending: gettext("Envoi en cours…"),
    send: gettext("Envoyer"),
    resend: gettext("Renvoyer avec ces effectifs"),
    sent: gettext("Envoyé au CSU à %(time)s"),
    refused: gettext("Envoi refusé\u202f: corrigez les champs signalés puis renvoyez."),
    session: gettext("Session expirée\u202f: reconnectez-vous, l'envoi se fera ensuite."),
    server: gettext("Le serveur ne répond pas correctement\u202f: nouvel essai automatique."),
    gone: gettext("Ce déclenchement n'existe plus\u202f: envoi abandonné."),
    offline: gettext("Hors ligne — informations du %(time)s"),
    live_lost: gettext("Connexion en direct perdue — reconnexion…"),
    ended: gettext("%(title)s — à %(time)s"),
    cancelled_kind: gettext("Déclenchement annulé (erreur)"),
    cancelled_text: gettext("Ce déclenchement a été envoyé par erreur\u202f: reprenez le cours normal de la journée."),
    alarm_sent: gettext("Alerte transmise au CSU à %(time)s"),
    alarm_failed: gettext("Échec de l'envoi de l'alerte\u202f: appelez le %(numbers)s."),
    integer: gettext("Un nombre entier positif ou nul."),
    choose_state: gettext("Choisissez d'abord\u202f: en sûreté, besoin d'aide ou évacués."),
    since: gettext("depuis %(time)s"),
    push_on: gettext("Alertes activées sur ce téléphone, même page fermée."),
    push_off: gettext("Recevez les alertes sur ce téléphone même quand cette page est fermée."),
    push_refused: gettext("Notifications refusées\u202f: autorisez-les dans les réglages du navigateur."),
    push_failed: gettext("Activation impossible pour l'instant\u202f: réessayez."),
  };

  // --- Small helpers ----------------------------------------------------------------------

  function fmt(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""));
  }

  function timeOf(iso) {
    const date = iso ? new Date(iso) : new Date();
    return date.toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = $("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; an http:// test server is not one.
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function show(node, visible) {
    if (node) node.hidden = !visible;
  }

  // Storage may be refused (private browsing, quota): fall back to memory for the session.
  const memory = {};
  const store = {
    get(key, fallback) {
      try {
        const raw = window.localStorage.getItem(key);
        return raw === null ? fallback : JSON.parse(raw);
      } catch {
        return key in memory ? memory[key] : fallback;
      }
    },
    set(key, value) {
      memory[key] = value;
      try {
        window.localStorage.setItem(key, JSON.stringify(value));
      } catch {
        /* kept in memory */
      }
    },
  };

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  // --- Sound and vibration (never for a silent activation) --------------------------------

  const sound = (function () {
    let context = null;
    let oscillators = [];
    let timer = null;

    function getContext() {
      if (!context) {
        const AudioCtx = window.AudioContext || window.webkitAudioContext;
        if (!AudioCtx) return null;
        context = new AudioCtx();
      }
      return context;
    }

    function tone(at, frequency, duration) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.35, at + 0.02);
      gain.gain.setValueAtTime(0.35, at + duration - 0.04);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + duration);
      oscillator.connect(gain);
      gain.connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + duration);
      oscillators.push(oscillator);
    }

    function schedule(seconds) {
      const start = context.currentTime + 0.05;
      for (let t = 0; t < seconds; t += 1) {
        tone(start + t, 880, 0.45);
        tone(start + t + 0.5, 660, 0.45);
      }
      timer = setTimeout(stop, seconds * 1000 + 300);
      show($("#btn-mute"), true);
    }

    function play(seconds) {
      stop();
      const ctx = getContext();
      if (!ctx) return;
      if (ctx.state === "running") {
        schedule(seconds);
        return;
      }
      // Without a gesture the browser may keep the context suspended; a late resume must
      // not start a siren on the director's next tap.
      const asked = Date.now();
      ctx.resume().then(() => {
        if (Date.now() - asked < 1500 && !silentNow()) schedule(seconds);
      }).catch(() => {});
    }

    function stop() {
      clearTimeout(timer);
      timer = null;
      oscillators.forEach((oscillator) => {
        try {
          oscillator.stop();
        } catch {
          /* already stopped */
        }
      });
      oscillators = [];
      show($("#btn-mute"), false);
    }

    // Resuming plays nothing: it only lets a later signal be heard.
    function unlock() {
      if (context && context.state === "suspended") context.resume().catch(() => {});
    }

    return { play, stop, unlock };
  })();

  function vibrate(pattern) {
    if (navigator.vibrate) {
      try {
        navigator.vibrate(pattern);
      } catch {
        /* not allowed yet */
      }
    }
  }

  function rung(id) {
    return (store.get(RUNG_KEY, []) || []).includes(id);
  }

  function markRung(id) {
    if (id == null || rung(id)) return;
    store.set(RUNG_KEY, (store.get(RUNG_KEY, []) || []).concat([id]).slice(-50));
  }

  let currentActivations = []; // every active activation concerning the page's school(s)

  function silentNow() {
    return currentActivations.some((activation) => activation && activation.silent);
  }

  function silence() {
    sound.stop();
    vibrate(0);
  }

  // Ring for a new activation, unless any activation under way is silent.
  function signal(activation, { force = false } = {}) {
    if (!activation) return;
    if (activation.silent || silentNow()) {
      silence();
      markRung(activation.id);
      return;
    }
    if (!force && rung(activation.id)) return;
    markRung(activation.id);
    sound.play(RING_SECONDS);
    vibrate(VIBRATION);
  }

  document.addEventListener("pointerdown", sound.unlock, { passive: true });
  document.addEventListener("keydown", sound.unlock);

  // --- The live connection ----------------------------------------------------------------

  function connectLive(onMessage, onOpen, onDown) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${window.location.host}${page.urls.ws}`;
    let failures = 0;
    let timer = null;
    let socket = null;
    let stopped = false;

    function open() {
      clearTimeout(timer);
      socket = new WebSocket(url);
      socket.addEventListener("open", () => {
        failures = 0;
        onOpen();
      });
      socket.addEventListener("message", (event) => {
        try {
          onMessage(JSON.parse(event.data));
        } catch {
          /* not JSON: not ours */
        }
      });
      socket.addEventListener("close", (event) => {
        socket = null;
        onDown(event.code);
        if (event.code === 4401) {
          stopped = true; // the session expired: a retry cannot succeed
          return;
        }
        if (stopped) return;
        failures += 1;
        const base = Math.min(30000, 1000 * 2 ** (failures - 1));
        timer = setTimeout(open, base / 2 + Math.random() * (base / 2));
      });
    }

    window.addEventListener("online", () => {
      if (!stopped && socket === null) {
        failures = 0;
        open();
      }
    });
    open();
  }

  // --- Offline: the service worker and the page cache -------------------------------------

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    const hadController = Boolean(navigator.serviceWorker.controller);
    navigator.serviceWorker.register(page.urls.sw, { scope: page.urls.scope }).then(() => {
      // The first visit is not yet controlled by the worker: keep this page for offline use.
      if (!hadController) cacheThisPage();
    }).catch(() => {});
  }

  // --- Web Push: the phone hears the CSU even with this page closed ----------------------

  function base64UrlBytes(text) {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function setupPush() {
    const box = $("#push-box");
    if (!box || !page.push || !page.push.enabled) return;
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) return;
    const button = $("[data-testid=btn-push]", box);
    const note = $("[data-field=push-state]", box);
    const registration = await navigator.serviceWorker.ready;
    const subscribed = await registration.pushManager.getSubscription();
    const say = (text, on) => {
      note.textContent = text;
      box.dataset.subscribed = on ? "true" : "false";
      button.hidden = on;
    };
    say(subscribed ? T.push_on : T.push_off, Boolean(subscribed));
    if (subscribed) send(subscribed); // the server may have forgotten it
    box.hidden = false;
    button.addEventListener("click", async () => {
      try {
        if ((await Notification.requestPermission()) !== "granted") {
          say(T.push_refused, false);
          return;
        }
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: base64UrlBytes(page.push.public_key),
        });
        say((await send(subscription)) ? T.push_on : T.push_failed, true);
      } catch {
        say(T.push_failed, false);
      }
    });
  }

  async function send(subscription) {
    const response = await fetch(page.urls.push_subscriptions, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(subscription.toJSON()),
    }).catch(() => null);
    return Boolean(response && response.ok);
  }

  function cacheThisPage() {
    if (!("caches" in window) || !navigator.onLine) return;
    const path = window.location.pathname;
    fetch(path, { credentials: "same-origin" }).then((response) => {
      if (!response.ok || response.redirected) return null;
      return caches.open(PAGES_CACHE).then((cache) => cache.put(path, response));
    }).catch(() => {});
  }

  // On logout, forget the cached pages: another person may use this phone next.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !/logout\/?$/.test(form.getAttribute("action") || "")) return;
    if (!("caches" in window) || form.dataset.cleared) return;
    event.preventDefault();
    form.dataset.cleared = "1";
    caches.delete(PAGES_CACHE).finally(() => form.submit());
  });

  function renderOffline() {
    const node = $("#offline-indicator");
    if (!node) return;
    const offline = !navigator.onLine;
    node.textContent = offline ? fmt(T.offline, { time: timeOf(page.rendered_at) }) : "";
    show(node, offline);
  }

  window.addEventListener("online", renderOffline);
  window.addEventListener("offline", renderOffline);

  // --- Several schools: the chooser -------------------------------------------------------

  if (!dataNode) {
    const links = $$("a[data-school]", chooser);

    async function refreshChoice() {
      const states = await Promise.all(links.map(async (link) => {
        try {
          const response = await fetch(link.dataset.stateUrl, { credentials: "same-origin" });
          return response.ok ? await readJson(response) : null;
        } catch {
          return null;
        }
      }));
      const active = [];
      states.forEach((state, index) => {
        if (!state) return;
        const link = links[index];
        const on = Boolean(state.activation);
        link.dataset.active = on ? "true" : "false";
        link.classList.toggle("active", on);
        if (state.activation) active.push(state.activation);
        active.push(...(state.others || []));
      });
      currentActivations = active;
      active.forEach((activation) => signal(activation));
    }

    registerWorker();
    setupPush();
    renderOffline();
    connectLive((message) => {
      if (message.type === "ppms") refreshChoice();
    }, refreshChoice, () => {});
    return;
  }

  // --- One school: the page ---------------------------------------------------------------

  const banner = $("#ppms-banner");
  const form = $("#status-form");
  const calm = $("#calm");
  const ended = $("#ended-banner");
  const result = $("#status-result");
  let lastState = page.status && page.status.state !== "pending" ? page.status.state : null;
  let chosenState = null;

  function statusUrl(activationId) {
    return page.urls.status.replace("{id}", String(activationId));
  }

  function setCurrentState(status) {
    const pill = $("#current-state");
    if (!pill || !status) return;
    const state = page.states[status.state] || page.states.pending;
    pill.dataset.state = status.state;
    pill.textContent = state.label;
    pill.style.setProperty("--pill", state.colour);
    const updated = $("[data-field=updated]", form);
    if (updated) updated.textContent = status.updated_at ? timeOf(status.updated_at) : "";
    if (status.state !== "pending") chooseState(status.state);
    $("[data-testid=btn-send]", form).textContent = status.updated_at ? T.resend : T.send;
  }

  // The situation chosen (chosenState, declared with lastState): sent with the counts by
  // btn-send.
  function chooseState(state) {
    chosenState = state;
    $$(".actions button[name=state]", form).forEach((button) => {
      button.setAttribute("aria-pressed", String(button.value === state));
    });
  }

  // As ppms.models.uncounted_text: "8 élèves non comptés", "2 élèves de plus que l'effectif".
  function uncountedText(forms, n) {
    if (!n) return "";
    const [singular, plural] = forms[n > 0 ? 0 : 1];
    const count = Math.abs(n);
    return fmt(count > 1 ? plural : singular, { n: count });
  }

  // As SchoolStatus.uncounted: the roll less présents, absents and manquants typed so far.
  function renderUncounted() {
    Object.entries(ROLL).forEach(([group, names]) => {
      const node = $(`[data-field=${group}_uncounted]`, form);
      if (!node) return;
      const roll = group === "pupils" ? page.school.pupils : page.school.staff;
      const values = names
        .flatMap((name) => [form.elements[name], ...$$(`#extra-groups [data-name=${name}]`, form)])
        .map((input) => input.value.trim())
        .filter((text) => /^\d+$/.test(text));
      const n = roll && values.length ? roll - values.reduce((sum, text) => sum + parseInt(text, 10), 0) : 0;
      node.textContent = uncountedText(page.uncounted[group], n);
      node.hidden = !n;
    });
  }

  // --- Groups of pupils in several places (the fields above are group 1) ----------------

  const extraGroups = $("#extra-groups");
  const groupTemplate = document.getElementById("group-tpl");

  function renumberGroups() {
    const boxes = $$("fieldset[data-group]", extraGroups);
    boxes.forEach((box, index) => {
      const n = index + 2;
      box.dataset.group = String(n);
      box.dataset.testid = `group-${n}`;
      $("[data-field=group-title]", box).textContent = fmt(T.group, { n });
      $$("[data-name]", box).forEach((input) => {
        input.id = `group-${n}-${input.dataset.name}`;
        input.dataset.testid = `group-${n}-${input.dataset.name}`;
      });
      $$("label[data-for]", box).forEach((label) => {
        label.htmlFor = `group-${n}-${label.dataset.for}`;
      });
      $$("[data-error-for]", box).forEach((node) => {
        node.dataset.testid = `error-group-${n}-${node.dataset.errorFor}`;
      });
    });
    $("[data-field=group-1-title]", form).hidden = !boxes.length;
  }

  function addGroup(group) {
    const box = groupTemplate.content.firstElementChild.cloneNode(true);
    extraGroups.appendChild(box);
    const posture = $("[data-name=posture]", box);
    posture.value = (group && group.posture) || form.elements.posture.value;
    $$("[data-name]", box).forEach((input) => {
      const value = group ? group[input.dataset.name] : null;
      if (input.dataset.name !== "posture") input.value = value != null ? String(value) : "";
    });
    renumberGroups();
    return box;
  }

  $("#btn-add-group").addEventListener("click", () => {
    const box = addGroup(null);
    $("[data-name=pupils_present]", box).focus();
  });
  extraGroups.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action=remove-group]");
    if (!button) return;
    button.closest("fieldset[data-group]").remove();
    renumberGroups();
    renderUncounted();
  });
  extraGroups.addEventListener("input", renderUncounted);

  // The extra groups as the API takes them, or null when one is not a whole number.
  function readGroups() {
    let valid = true;
    const groups = $$("fieldset[data-group]", extraGroups).map((box) => {
      const group = { posture: $("[data-name=posture]", box).value, location: $("[data-name=location]", box).value.trim() };
      COUNTS.forEach((name) => {
        const input = $(`[data-name=${name}]`, box);
        const text = input.value.trim();
        if (text === "" && !(input.validity && input.validity.badInput)) return;
        if (!/^\d+$/.test(text)) {
          showGroupErrors([box], { [name]: [T.integer] });
          valid = false;
          return;
        }
        group[name] = parseInt(text, 10);
      });
      return group;
    });
    return valid ? groups : null;
  }

  // A 400's {"groups": [{field: [message]}, …]}: group 1 on the fields above, the others
  // in their fieldsets; the first brought into view.
  function showGroupErrors(boxes, errors) {
    boxes.forEach((box, index) => {
      Object.entries(errors[index] || errors || {}).forEach(([field, messages]) => {
        const node = $(`[data-error-for="${field}"]`, box);
        if (!node) return;
        node.textContent = Array.isArray(messages) ? messages.join(" ") : String(messages);
        node.hidden = false;
        const input = $(`[data-name="${field}"]`, box);
        if (input) input.setAttribute("aria-invalid", "true");
      });
    });
    const first = $$("[data-error-for]", form).find((node) => !node.hidden);
    if (first) first.scrollIntoView({ block: "center" });
  }

  function fillForm(status) {
    const groups = (status && status.groups) || [];
    extraGroups.replaceChildren();
    const first = groups.length ? groups[0] : status;
    COUNTS.forEach((name) => {
      const input = form.elements[name];
      if (input) input.value = first && first[name] != null ? String(first[name]) : "";
    });
    groups.slice(1).forEach((group) => addGroup(group));
    renumberGroups();
    form.elements.location.value = (first && first.location) || "";
    form.elements.needs.value = (status && status.needs) || "";
    const posture = (first && first.posture) || (page.activation && page.activation.scenario);
    if (posture) form.elements.posture.value = posture;
    chosenState = null;
    chooseState(status && status.state !== "pending" ? status.state : null);
    renderUncounted();
  }

  function clearErrors(root) {
    $$("[data-error-for]", root || form).forEach((node) => {
      node.textContent = "";
      node.hidden = true;
    });
    $$("[aria-invalid]", root || form).forEach((node) => node.removeAttribute("aria-invalid"));
  }

  // DRF answers {"field": ["message", …], "non_field_errors": […]} or {"detail": "…"}.
  function showErrors(root, errors, prefix) {
    const general = [];
    Object.entries(errors || {}).forEach(([field, messages]) => {
      const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
      const node = $(`[data-error-for="${field}"]`, root);
      if (node && field !== "__all__") {
        node.textContent = text;
        node.hidden = false;
        const input = root.elements && root.elements[field];
        if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      } else {
        general.push(text);
      }
    });
    const all = $("[data-error-for=__all__]", root);
    if (all) {
      all.textContent = [prefix, ...general].filter(Boolean).join(" ");
      all.hidden = !all.textContent;
    }
    // The first message in the form's order, brought into view with its field focused.
    const first = $$("[data-error-for]", root).find((node) => !node.hidden);
    if (first) {
      const field = first.dataset.errorFor;
      const input = root.elements && root.elements[field];
      if (input && input.focus) input.focus({ preventScroll: true });
      first.scrollIntoView({ block: "center" });
    }
  }

  function renderPlan(scenario) {
    const template = document.getElementById(`plan-tpl-${scenario}`);
    const target = $("[data-field=plan]", banner);
    target.replaceChildren();
    if (template) target.appendChild(template.content.cloneNode(true));
  }

  function renderOthers(others) {
    const list = $("#other-activations");
    list.replaceChildren();
    others.forEach((other) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `?activation=${other.id}`;
      link.textContent = other.title;
      item.appendChild(link);
      list.appendChild(item);
    });
    list.hidden = others.length === 0;
  }

  // Each number a link: tel: to call, sms: for 114 (first in an intrusion: a text is silent).
  function renderNumbers(numbers) {
    const list = $("[data-field=numbers]", banner);
    list.replaceChildren(...numbers.map((item) => {
      const entry = document.createElement("li");
      const link = document.createElement("a");
      link.href = `${item.sms ? "sms" : "tel"}:${item.number}`;
      const number = document.createElement("strong");
      number.textContent = item.number;
      link.append(number, ` ${item.label}`);
      entry.appendChild(link);
      return entry;
    }));
  }

  function renderDestination(destination) {
    const node = $("[data-field=destination]", banner);
    $("[data-field=destination-text]", node).textContent = destination ? destination.text : "";
    node.hidden = !destination;
  }

  function renderBanner(activation) {
    const silent = Boolean(activation.silent);
    banner.dataset.activation = String(activation.id);
    banner.dataset.scenario = activation.scenario;
    banner.dataset.silent = silent ? "true" : "false";
    banner.dataset.drill = activation.drill ? "true" : "false";
    banner.classList.toggle("banner--silent", silent);
    banner.classList.toggle("banner--drill", Boolean(activation.drill));
    banner.classList.remove("banner--ended");
    $("[data-field=scenario-label]", banner).textContent = page.scenarios[activation.scenario] || activation.scenario;
    $("[data-field=drill]", banner).hidden = !activation.drill;
    $("[data-field=title]", banner).textContent = activation.title;
    $("[data-field=since]", banner).textContent = fmt(T.since, { time: timeOf(activation.started_at) });
    $("[data-field=silent-hint]", banner).hidden = !silent;
    renderNumbers(page.numbers[activation.scenario === "intrusion" ? "intrusion" : "default"]);
    renderPlan(activation.scenario);
    const vigicrues = $("[data-field=vigicrues]", banner);
    vigicrues.dataset.colour = activation.vigicrues_colour || "";
    $("[data-field=vigicrues-text]", vigicrues).textContent = (page.vigicrues || {})[activation.vigicrues_colour] || "";
    vigicrues.hidden = !activation.vigicrues_colour;
    banner.hidden = false;
  }

  // The school's first sign of life: its page showed the activation, in view (once per
  // activation and page; the server keeps the first). The board shows it.
  const seenSent = new Set();
  function saySeen() {
    const activation = page.activation;
    if (!activation || activation.ended_at || seenSent.has(activation.id)) return;
    if (document.visibilityState !== "visible") return;
    seenSent.add(activation.id);
    fetch(statusUrl(activation.id) + "seen/", {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    })
      .then((response) => {
        if (!response.ok && response.status !== 403) seenSent.delete(activation.id);
      })
      .catch(() => seenSent.delete(activation.id)); // offline: the next showing says it
  }
  document.addEventListener("visibilitychange", saySeen);

  // Show a state of the page: {activation, status, others} (state.json, or a live event).
  function apply(state, { ring = true } = {}) {
    const previous = page.activation;
    const activation = state.activation;
    page.activation = activation;
    page.status = state.status;
    page.others = state.others || [];
    currentActivations = [activation, ...page.others].filter(Boolean);
    if (activation) {
      const changed = !previous || previous.id !== activation.id;
      renderBanner(activation);
      renderDestination(state.destination);
      calm.hidden = true;
      form.hidden = false;
      if (changed) {
        lastState = state.status && state.status.state !== "pending" ? state.status.state : null;
        clearErrors(form);
        result.textContent = "";
        fillForm(state.status);
      }
      setCurrentState(state.status || { state: "pending" });
    } else {
      banner.hidden = true;
      form.hidden = true;
      calm.hidden = false;
    }
    renderOthers(page.others);
    saySeen();
    if (silentNow()) {
      silence();
    } else if (ring) {
      currentActivations.forEach((item) => signal(item));
    }
  }

  async function refresh() {
    const url = new URL(page.urls.state, window.location.href);
    if (page.activation) url.searchParams.set("activation", page.activation.id);
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.includes("json")) return; // e.g. sent to the login page
      const state = await readJson(response);
      if (!state) return;
      page.rendered_at = state.rendered_at;
      apply(state);
    } catch {
      renderOffline();
    }
  }

  function showEnded(activation) {
    silence();
    markRung(activation.id);
    $("[data-field=ended-at]", ended).textContent = fmt(T.ended, {
      title: activation.title,
      time: timeOf(activation.ended_at),
    });
    ended.dataset.cancelled = activation.cancelled ? "true" : "false";
    if (activation.cancelled) {
      $("[data-field=ended-kind]", ended).textContent = T.cancelled_kind;
      $("[data-field=ended-text]", ended).textContent = T.cancelled_text;
    }
    ended.hidden = false;
    banner.classList.add("banner--ended");
    form.hidden = true;
  }

  function onLive(message) {
    if (message.type !== "ppms" || !message.activation) return;
    const activation = message.activation;
    const current = page.activation;
    const isCurrent = current && current.id === activation.id;
    const status = message.status;
    if (status && status.school !== page.school.uai) return; // another school of this director

    if (message.event === "ended" || message.event === "cancelled") {
      if (isCurrent) showEnded(activation);
      refresh();
    } else if (message.event === "activated") {
      if (activation.silent) silence(); // before anything else
      // A director of one school hears only that school's events: show at once. With
      // several schools the event does not say which: ask first.
      const known = isCurrent || (page.others || []).some((other) => other.id === activation.id);
      if (!page.several && !known && !activation.ended_at) {
        const others = [current, ...(page.others || [])].filter((a) => a && a.id !== activation.id);
        ended.hidden = true; // a new alert supersedes the last end of alert
        apply({ activation, status: { state: "pending", posture: activation.scenario }, others });
      }
      refresh();
    } else if (message.event === "updated" && isCurrent) {
      renderBanner(activation); // the Vigicrues colour given or changed
    } else if (message.event === "status" && isCurrent) {
      page.status = status;
      setCurrentState(status);
    } else if (message.event === "escalated" && isCurrent) {
      page.status = status;
      setCurrentState(status);
      signal(activation, { force: true }); // a reminder rings again, except when silent
    }
  }

  // --- Reports: outbox, send, replay ------------------------------------------------------

  let waiting = false; // the last attempt could not reach the server
  let flushing = false;
  let retryTimer = null;

  function outbox() {
    return store.get(OUTBOX_KEY, []) || [];
  }

  function mine(item) {
    return item.user === page.user && item.school === page.school.uai;
  }

  function removeFromOutbox(clientId) {
    store.set(OUTBOX_KEY, outbox().filter((item) => item.client_id !== clientId));
  }

  function renderQueued() {
    const count = outbox().filter(mine).length;
    const node = $("#queued-indicator");
    if (!node) return;
    const visible = count > 0 && (waiting || !navigator.onLine);
    node.textContent = count > 1 ? fmt(T.queued_n, { n: count }) : T.queued;
    show(node, visible);
  }

  function scheduleRetry() {
    if (retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      flush();
    }, RETRY_MS);
  }

  function onSent(item, body) {
    if (page.activation && item.activation === page.activation.id) {
      const status = body && body.state ? body : { ...(page.status || {}), ...item.body, updated_at: new Date().toISOString() };
      page.status = status;
      setCurrentState(status);
      result.textContent = fmt(T.sent, { time: timeOf() });
    }
  }

  function onRefused(item, body, message) {
    if (!page.activation || item.activation !== page.activation.id) {
      result.textContent = message || T.refused;
      return;
    }
    // Give the director their figures back, with what to fix.
    fillForm({ ...item.body });
    clearErrors(form);
    const errors = body && typeof body === "object" ? { ...body } : {};
    const groupErrors = Array.isArray(errors.groups) ? errors.groups : null;
    if (groupErrors) delete errors.groups;
    showErrors(form, { ...(groupErrors ? groupErrors[0] : {}), ...errors }, message || T.refused);
    if (groupErrors) {
      const boxes = [null, ...$$("fieldset[data-group]", extraGroups)];
      groupErrors.forEach((groupError, index) => {
        if (index > 0 && boxes[index]) showGroupErrors([boxes[index]], groupError);
      });
    }
    result.textContent = message || T.refused;
  }

  async function drain() {
    for (;;) {
      const item = outbox().find(mine);
      if (!item) {
        waiting = false;
        return;
      }
      let response;
      try {
        response = await fetch(item.url, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "X-CSRFToken": csrfToken(),
          },
          body: JSON.stringify(item.body),
        });
      } catch {
        waiting = true; // no network: keep it, try again later
        scheduleRetry();
        return;
      }
      const body = await readJson(response);
      const detail = body && typeof body.detail === "string" ? body.detail : "";
      if (response.ok) {
        waiting = false;
        removeFromOutbox(item.client_id);
        onSent(item, body);
      } else if (response.status === 400) {
        removeFromOutbox(item.client_id);
        onRefused(item, body, T.refused);
      } else if (response.status === 404) {
        removeFromOutbox(item.client_id);
        onRefused(item, {}, T.gone);
      } else if (response.status === 401 || (response.status === 403 && /csrf/i.test(detail))) {
        waiting = true; // signed out: kept until the director signs in again
        result.textContent = T.session;
        scheduleRetry();
        return;
      } else if (response.status === 403) {
        removeFromOutbox(item.client_id);
        onRefused(item, {}, detail || T.refused);
      } else {
        waiting = true; // 5xx, 429…: the server may recover
        result.textContent = T.server;
        scheduleRetry();
        return;
      }
    }
  }

  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      // One tab at a time drains the shared outbox.
      if (navigator.locks && navigator.locks.request) {
        await navigator.locks.request(OUTBOX_KEY, drain);
      } else {
        await drain();
      }
    } finally {
      flushing = false;
      renderQueued();
    }
  }

  function readCounts(body) {
    let valid = true;
    COUNTS.forEach((name) => {
      const input = form.elements[name];
      const text = input.value.trim();
      const bad = input.validity && input.validity.badInput; // "abc" reads as "" in a number field
      if (text === "" && !bad) return;
      if (bad || !/^\d+$/.test(text)) {
        showErrors(form, { [name]: [T.integer] });
        valid = false;
        return;
      }
      body[name] = parseInt(text, 10);
    });
    return valid;
  }

  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[name=state]");
    if (!button) return;
    chooseState(button.value);
    const error = $("[data-error-for=state]", form);
    error.hidden = true;
  });
  form.addEventListener("input", (event) => {
    if (COUNTS.includes(event.target.name)) renderUncounted();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!page.activation) return;
    const state = chosenState || lastState;
    clearErrors(form);
    if (!state) {
      showErrors(form, { state: [T.choose_state] });
      return;
    }
    const body = { state, posture: form.elements.posture.value };
    if (!readCounts(body)) return;
    body.location = form.elements.location.value.trim();
    const extra = readGroups();
    if (!extra) return;
    if (extra.length) {
      // Several groups: each its own posture, place and counts; the school's are their sums.
      const first = { posture: body.posture, location: body.location };
      COUNTS.concat(["posture", "location"]).forEach((name) => {
        if (name in body) first[name] = body[name];
        delete body[name];
      });
      body.groups = [first, ...extra];
    }
    body.needs = form.elements.needs.value.trim();
    body.client_id = uuid();
    lastState = state;
    const activationId = page.activation.id;
    store.set(OUTBOX_KEY, outbox().concat([{
      client_id: body.client_id,
      url: statusUrl(activationId),
      body,
      user: page.user,
      school: page.school.uai,
      activation: activationId,
      queued_at: new Date().toISOString(),
    }]));
    silence(); // the director answered: the signal has done its job
    markRung(activationId);
    result.textContent = T.sending;
    renderQueued();
    flush();
  });

  window.addEventListener("online", flush);
  window.addEventListener("online", renderQueued);
  window.addEventListener("offline", renderQueued);
  window.addEventListener("storage", (event) => {
    if (event.key === OUTBOX_KEY) renderQueued();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") flush();
  });

  // --- Raising the alarm from the school --------------------------------------------------

  const alarmButton = $("#btn-alarm");
  const alarmForm = $("#alarm-form");
  const alarmResult = $("#alarm-result");

  function toggleAlarm(open) {
    alarmForm.hidden = !open;
    alarmButton.setAttribute("aria-expanded", String(open));
    if (open) alarmForm.elements.scenario.focus();
  }

  alarmButton.addEventListener("click", () => toggleAlarm(alarmForm.hidden));
  $("#btn-alarm-cancel").addEventListener("click", () => toggleAlarm(false));

  alarmForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(alarmForm);
    const scenario = alarmForm.elements.scenario.value;
    const numbers = page.numbers[scenario === "intrusion" ? "intrusion_text" : "default_text"];
    const send = $("[data-testid=btn-alarm-send]", alarmForm);
    send.disabled = true;
    try {
      const response = await fetch(page.urls.alarm, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ scenario, message: alarmForm.elements.message.value.trim() }),
      });
      const body = await readJson(response);
      if (response.ok) {
        alarmForm.reset();
        toggleAlarm(false);
        alarmResult.textContent = fmt(T.alarm_sent, { time: timeOf() });
        refresh();
      } else if (response.status === 400 && body) {
        showErrors(alarmForm, body);
      } else {
        showErrors(alarmForm, {}, fmt(T.alarm_failed, { numbers }));
      }
    } catch {
      // Not queued: an alarm is only useful now, and the phone can still call.
      showErrors(alarmForm, {}, fmt(T.alarm_failed, { numbers }));
    } finally {
      send.disabled = false;
    }
  });

  // --- Buttons, start ---------------------------------------------------------------------

  $("#btn-mute").addEventListener("click", silence);
  $("#btn-ended-close").addEventListener("click", () => {
    ended.hidden = true;
    if (!page.activation) banner.hidden = true;
  });
  $("#btn-sound-test").addEventListener("click", () => {
    if (!silentNow()) sound.play(2);
  });

  currentActivations = [page.activation, ...(page.others || [])].filter(Boolean);
  if (page.activation) {
    apply(page, { ring: false });
    // A school that gave several groups finds them again, each in its own fieldset.
    if (page.status && (page.status.groups || []).length > 1) {
      fillForm(page.status);
      setCurrentState(page.status);
    }
    // On load, ring again while the school has not answered (signal() stays silent for
    // an intrusion); browsers may hold the sound until the first tap.
    signal(page.activation, { force: !page.status || page.status.state === "pending" });
  }
  renderOffline();
  renderQueued();
  registerWorker();
  setupPush();
  flush();
  connectLive(onLive, () => {
    show($("#live-indicator"), false);
    refresh();
    flush();
  }, (code) => {
    const node = $("#live-indicator");
    node.textContent = code === 4401 ? T.session : T.live_lost;
    node.hidden = false;
  });
})();
