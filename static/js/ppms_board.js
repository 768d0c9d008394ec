// The operators' PPMS board: /ppms/ (templates/ppms/board.html).
//
// Stable test ids (browser tests):
//   ppms-board           the page
//   live-status          the websocket's state ("En direct" or reconnecting)
//   activations          the active activations; each section data-testid="activation"
//                        with data-activation (id), data-scenario, data-silent, data-drill,
//                        data-ended ("true" at once on the live "ended" event)
//   totals               (one per activation) data-pupils-safe, data-pupils-concerned,
//                        data-schools, data-schools-safe, data-schools-help,
//                        data-schools-pending
//   each school row      <tr data-school="<uai>" data-state="pending|safe|needs_help|
//                        evacuated" data-escalated="true|false" data-confirmed-at>; needing
//                        help first, then pending (escalated first), then the others
//   elapsed              minutes since the activation; ended-note once ended
//   btn-end              opens end-dialog: field-ordered-by (the authority that ordered
//                        it), a checkbox per school still silent or needing help (each
//                        must be confirmed); btn-end-confirm sends the end of alert,
//                        btn-end-cancel closes it; end-error shows a refusal
//   btn-cancel           cancels an activation sent by mistake (asks the reason)
//   proposal             a proposition de déclenchement (data-proposal = id): btn-validate,
//                        btn-dismiss and btn-proposal-cancel for who may decide (a reason
//                        is asked), proposal-who otherwise; decision-error shows a refusal;
//                        it rings until btn-proposal-seen (this tab's session)
//   link-report, link-report-csv   the after-action report of an activation
//   no-activation        shown when nothing is under way; recently-ended lists the last
//   activate-form        field-scenario, field-title, zone-<id>, school-<uai>,
//                        field-school-filter, field-drill, btn-activate; error-<field>,
//                        activate-error, activate-result
//   shelters             the centres d'accueil: rows data-shelter="<id>" data-full
//                        data-open, field-occupancy-<id>, btn-occupancy-<id>,
//                        shelter-warning-<id>, btn-shelter-open-<id> ("Ouvrir" / "Fermer")
//   shelter-panel        in an evacuation's section, its centre d'accueil: shelter-total,
//                        shelter-arrivals (rows data-commune="<INSEE>"),
//                        shelter-over-capacity; shelter-form (the centre's commune's
//                        operators): arrival-<INSEE>, arrival-other-commune and
//                        arrival-other-count, field-shelter-staff, field-shelter-supplies,
//                        btn-shelter-record, shelter-error
//   board-vigicrues      a flood's Vigicrues colour; vigicrues-form: field-vigicrues,
//                        btn-vigicrues, vigicrues-error
//   board-groups         a school's groups (place, posture, counts) when it gave several
//   board-directory      a school's crisis directory
//
// Live: `proposal` events (proposed, decided) reload the sections, as do `ppms` events
// of the operator's communes (core/live.py). A status or an
// escalation updates its row in place (state, counts, time to answer), re-sorts the rows
// and recounts the totals; an activation (new, schools added, a school's alarm) reloads
// the server-rendered sections; an end marks its section at once. After a reconnect the
// sections are reloaded, so nothing missed stays missing. A `shelter` event (occupancy
// recorded, centre opened or closed) redraws its row in place.
import { gettext } from "./i18n.js";
import { connectLive, liveUrl } from "./live.js";

(function () {
  "use strict";

  const configNode = document.getElementById("ppms-board-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  // The board's words, from the JavaScript catalogue (locale/*/djangojs.po).
  const T = {
    activated: gettext("Déclenchement envoyé."),
    ended: gettext("Fin d'alerte donnée à %(time)s"),
    failed: gettext("Échec\u202f: %(message)s"),
    network: gettext("Pas de réseau\u202f: réessayez."),
    live_lost: gettext("Connexion en direct perdue — reconnexion…"),
    live_ok: gettext("En direct"),
    minutes: gettext("il y a %(n)s min"),
    escalated: gettext("Relancée"),
    full: gettext("Complet"),
    open: gettext("Ouvert"),
    closed: gettext("Fermé"),
    record: gettext("Enregistrer"),
    saved: gettext("Enregistré."),
    no_shelter: gettext("Aucun centre d'accueil visible."),
    pick_scope: gettext("Choisissez au moins une zone ou une école."),
    cancelled: gettext("Déclenchement annulé (erreur) à %(time)s"),
    reason_dismiss: gettext("Pourquoi écarter cette proposition\u202f? (enregistré avec votre nom)"),
    reason_cancel: gettext("Pourquoi annuler\u202f? Tous ceux qui l'ont reçu apprendront qu'il était une erreur."),
    reason_needed: gettext("Le motif est obligatoire."),
    ordered_by_needed: gettext("Indiquez l'autorité qui a ordonné la fin d'alerte."),
    confirm_schools: gettext("Cochez chaque école sans réponse ou ayant besoin d'aide."),
    close_shelter: gettext("Fermer"),
    open_shelter: gettext("Ouvrir"),
  };
  const ORDER = { needs_help: 0, pending: 1 };

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const sections = document.getElementById("sections");

  function fmt(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""));
  }

  function timeOf(iso) {
    return (iso ? new Date(iso) : new Date()).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
  }

  // As ppms.views.duration_text: « 4 min 05 s », « 1 h 12 min ».
  function duration(fromIso, toIso) {
    if (!fromIso || !toIso) return "—";
    let seconds = Math.max(0, Math.floor((new Date(toIso) - new Date(fromIso)) / 1000));
    const hours = Math.floor(seconds / 3600);
    seconds -= hours * 3600;
    const minutes = Math.floor(seconds / 60);
    seconds -= minutes * 60;
    const two = (n) => String(n).padStart(2, "0");
    if (hours) return `${hours} h ${two(minutes)} min`;
    if (minutes) return `${minutes} min ${two(seconds)} s`;
    return `${seconds} s`;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = $("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      /* no JSON body */
    }
    return { response, data };
  }

  function clearErrors(root) {
    $$("[data-error-for]", root).forEach((node) => {
      node.textContent = "";
      node.hidden = true;
    });
  }

  function showErrors(root, errors, prefix) {
    const general = [];
    Object.entries(errors || {}).forEach(([field, messages]) => {
      const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
      const node = $(`[data-error-for="${field}"]`, root);
      if (node && field !== "__all__") {
        node.textContent = text;
        node.hidden = false;
      } else {
        general.push(text);
      }
    });
    const all = $("[data-error-for=__all__]", root);
    all.textContent = [prefix, ...general].filter(Boolean).join(" ");
    all.hidden = !all.textContent;
  }

  function errorText(data) {
    if (!data) return "";
    if (typeof data.detail === "string") return data.detail;
    return Object.values(data).flat().join(" ");
  }

  // --- Sections: refresh, rows, totals ----------------------------------------------------

  let refreshTimer = null;

  // Coalesce bursts (an activation of twenty schools is one refresh).
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshSections, 150);
  }

  async function refreshSections() {
    try {
      const response = await fetch(config.urls.sections, { credentials: "same-origin" });
      if (!response.ok || response.redirected) return;
      sections.innerHTML = await response.text();
      tick();
    } catch {
      /* offline: the next reconnect refreshes */
    }
  }

  function section(activationId) {
    return $(`[data-testid=activation][data-activation="${activationId}"]`, sections);
  }

  function setText(row, field, value) {
    const node = $(`[data-field="${field}"]`, row);
    if (node) node.textContent = value == null || value === "" ? (node.classList.contains("num") ? "—" : "") : String(value);
  }

  function updateRow(activationId, status) {
    const box = section(activationId);
    const row = box && $(`tr[data-school="${status.school}"]`, box);
    if (!row) return false;
    const state = config.states[status.state] || config.states.pending;
    row.dataset.state = status.state;
    row.style.setProperty("--state", state.colour);
    const pill = $("[data-field=state]", row);
    pill.textContent = state.label;
    pill.style.setProperty("--pill", state.colour);
    config.counts.forEach((name) => setText(row, name, status[name]));
    ["pupils", "adults"].forEach((group) => {
      const node = $(`[data-field=${group}_uncounted]`, row);
      const n = status[`${group}_uncounted`];
      node.textContent = uncountedText(config.uncounted[group], n);
      node.hidden = !n;
    });
    setText(row, "location", status.location);
    setText(row, "needs", status.needs);
    setText(row, "updated", status.updated_at ? timeOf(status.updated_at) : "");
    const escalated = Boolean(status.escalated_at);
    row.dataset.escalated = escalated ? "true" : "false";
    $("[data-field=escalated]", row).hidden = !escalated;
    if (!row.dataset.confirmedAt && status.state !== "pending" && status.updated_at) {
      row.dataset.confirmedAt = status.updated_at;
      setText(row, "confirm", duration(box.dataset.startedAt, status.updated_at));
    }
    sortRows(box);
    recount(box);
    return true;
  }

  function sortRows(box) {
    const body = $("tbody", box);
    const rows = $$("tr[data-school]", body);
    const key = (row) => [
      ORDER[row.dataset.state] ?? 2,
      row.dataset.escalated === "true" ? 0 : 1,
      row.dataset.name || "",
    ];
    rows.sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      return ka[0] - kb[0] || ka[1] - kb[1] || ka[2].localeCompare(kb[2], "fr");
    });
    rows.forEach((row) => body.appendChild(row));
  }

  // As ppms.models.uncounted_text: "8 élèves non comptés", "2 élèves de plus que l'effectif".
  function uncountedText(forms, n) {
    if (!n) return "";
    const [singular, plural] = forms[n > 0 ? 0 : 1];
    const count = Math.abs(n);
    return fmt(count > 1 ? plural : singular, { n: count });
  }

  // As ppms.views.Totals: pupils present in schools safe, in schools evacuated (their own
  // total), over pupils enrolled.
  function recount(box) {
    const totals = {
      pupils_safe: 0, pupils_evacuated: 0, pupils_concerned: 0, schools: 0,
      schools_safe: 0, schools_evacuated: 0, schools_help: 0, schools_pending: 0,
    };
    $$("tr[data-school]", box).forEach((row) => {
      const state = row.dataset.state;
      totals.schools += 1;
      totals.pupils_concerned += parseInt(row.dataset.pupils, 10) || 0;
      const present = parseInt($("[data-field=pupils_present]", row).textContent, 10) || 0;
      if (state === "safe") {
        totals.schools_safe += 1;
        totals.pupils_safe += present;
      } else if (state === "evacuated") {
        totals.schools_evacuated += 1;
        totals.pupils_evacuated += present;
      } else if (state === "needs_help") {
        totals.schools_help += 1;
      } else {
        totals.schools_pending += 1;
      }
    });
    const node = $("[data-testid=totals]", box);
    Object.entries(totals).forEach(([name, value]) => {
      node.dataset[name.replace(/_(\w)/g, (_, c) => c.toUpperCase())] = String(value);
      const cell = $(`[data-total="${name}"]`, node);
      if (cell) cell.textContent = String(value);
    });
  }

  function markEnded(activation) {
    const box = section(activation.id);
    if (!box) return;
    box.dataset.ended = "true";
    box.classList.add("is-ended");
    const note = $("[data-field=ended]", box);
    note.textContent = fmt(activation.cancelled ? T.cancelled : T.ended, {
      time: timeOf(activation.ended_at),
    });
    note.hidden = false;
    $$("[data-testid=btn-end], [data-testid=btn-cancel]", box).forEach((button) => button.remove());
  }

  function tick() {
    $$("[data-testid=activation]", sections).forEach((box) => {
      if (box.dataset.ended === "true") return;
      const minutes = Math.floor((Date.now() - new Date(box.dataset.startedAt)) / 60000);
      const node = $("[data-field=elapsed]", box);
      if (node) node.textContent = fmt(T.minutes, { n: Math.max(0, minutes) });
    });
  }

  function onLive(message) {
    if (message.type === "proposal") {
      refreshSoon();
      return;
    }
    if (message.type === "ppms" && message.event === "shelter" && message.shelter) {
      showShelter(message.shelter);
      return;
    }
    if (message.type !== "ppms" || !message.activation) return;
    const activation = message.activation;
    if (message.event === "ended" || message.event === "cancelled") {
      markEnded(activation);
    } else if ((message.event === "status" || message.event === "escalated") && message.status) {
      // A school in several groups: its row lists them, rendered by the server.
      const grouped = (message.status.groups || []).length > 1 ||
        $(`[data-activation="${activation.id}"] tr[data-school="${message.status.school}"] [data-testid=board-groups]`, sections);
      if (grouped || !updateRow(activation.id, message.status)) refreshSoon();
    } else {
      refreshSoon(); // activated: new, schools added, or a school's alarm
    }
  }

  // --- A centre d'accueil's record, a flood's Vigicrues colour ---------------------------

  sections.addEventListener("submit", async (event) => {
    const form = event.target;
    const shelterForm = form.matches("[data-testid=shelter-form]");
    const vigicruesForm = form.matches("[data-testid=vigicrues-form]");
    if (!shelterForm && !vigicruesForm) return;
    event.preventDefault();
    clearErrors(form);
    const id = form.dataset.activation;
    let url;
    let body;
    if (shelterForm) {
      const arrivals = $$("input[data-commune]", form)
        .filter((input) => input.value.trim() !== "")
        .map((input) => ({ commune: Number(input.dataset.commune), count: Number(input.value) }));
      const other = $("[data-field=other-commune]", form);
      const otherCount = $("[data-field=other-count]", form);
      if (other && other.value && otherCount.value.trim() !== "") {
        arrivals.push({ commune: Number(other.value), count: Number(otherCount.value) });
      }
      const staff = form.elements.staff.value.trim();
      body = { arrivals, staff: staff === "" ? null : Number(staff), supplies: form.elements.supplies.value.trim() };
      url = config.urls.shelter_report.replace("{id}", id);
    } else {
      body = { colour: form.elements.colour.value };
      url = config.urls.vigicrues.replace("{id}", id);
    }
    try {
      const { response, data } = await post(url, body);
      if (!response.ok) {
        showErrors(form, {}, fmt(T.failed, { message: errorText(data) || response.status }));
        return;
      }
      refreshSoon();
    } catch {
      showErrors(form, {}, T.network);
    }
  });

  // --- The end of alert -------------------------------------------------------------------

  const dialog = document.getElementById("end-dialog");
  let ending = null;

  const unsettledBox = $("[data-field=unsettled]", dialog);
  const unsettledList = $("[data-field=unsettled-list]", dialog);
  const dialogError = $("[data-field=end-dialog-error]", dialog);

  sections.addEventListener("click", (event) => {
    const button = event.target.closest("[data-testid=btn-end]");
    if (!button) return;
    ending = button.closest("[data-testid=activation]");
    $("[data-field=title]", dialog).textContent = ending.dataset.title;
    // Every school still silent or needing help must be confirmed, one by one.
    unsettledList.replaceChildren();
    $$("tr[data-school]", ending)
      .filter((row) => row.dataset.state === "pending" || row.dataset.state === "needs_help")
      .forEach((row) => {
        const label = document.createElement("label");
        label.className = "check";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = row.dataset.school;
        box.setAttribute("data-testid", `confirm-${row.dataset.school}`);
        const name = $("th", row) ? $("th", row).textContent.trim() : row.dataset.school;
        label.append(box, " ", name);
        unsettledList.append(label);
      });
    unsettledBox.hidden = !unsettledList.children.length;
    dialogError.hidden = true;
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else if (window.confirm(ending.dataset.title)) {
      endActivation(ending);
    }
  });

  dialog.addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value !== "confirm") return;
    const orderedBy = $("#field-ordered-by", dialog).value.trim();
    const unchecked = $$("input[type=checkbox]", unsettledList).filter((box) => !box.checked);
    const problem = !orderedBy && ending && ending.dataset.drill !== "true"
      ? T.ordered_by_needed
      : unchecked.length ? T.confirm_schools : "";
    if (problem) {
      event.preventDefault(); // keep the dialog open: say what is missing
      dialogError.textContent = problem;
      dialogError.hidden = false;
    }
  });

  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "confirm" && ending) endActivation(ending);
    dialog.returnValue = "";
    ending = null;
  });

  async function endActivation(box) {
    const id = box.dataset.activation;
    const error = $("[data-field=end-error]", box);
    error.hidden = true;
    const body = {
      ordered_by: $("#field-ordered-by", dialog).value.trim(),
      confirmed_schools: $$("input[type=checkbox]:checked", unsettledList).map((input) => input.value),
    };
    try {
      const { response, data } = await post(config.urls.end.replace("{id}", id), body);
      if (response.ok) {
        markEnded({ id: Number(id), ended_at: (data && data.ended_at) || new Date().toISOString() });
      } else {
        error.textContent = fmt(T.failed, { message: errorText(data) || response.status });
        error.hidden = false;
      }
    } catch {
      error.textContent = T.network;
      error.hidden = false;
    }
  }

  // --- Proposals and cancellations: an authority's decisions ------------------------------

  sections.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-decision], [data-testid=btn-cancel]");
    if (!button) return;
    const proposal = button.closest("[data-testid=proposal]");
    const activation = button.closest("[data-testid=activation]");
    const decision = button.dataset.decision || "cancel";
    let body;
    if (decision !== "validate") {
      const reason = window.prompt(decision === "dismiss" ? T.reason_dismiss : T.reason_cancel);
      if (reason === null) return;
      if (!reason.trim()) {
        window.alert(T.reason_needed);
        return;
      }
      body = { reason: reason.trim() };
    }
    const url = proposal
      ? config.urls.proposal.replace("{id}", proposal.dataset.proposal).replace("{decision}", decision)
      : config.urls.cancel.replace("{id}", activation.dataset.activation);
    const error = $("[data-field=decision-error], [data-field=end-error]", proposal || activation);
    error.hidden = true;
    button.disabled = true;
    try {
      const { response, data } = await post(url, body);
      if (response.ok) {
        refreshSoon();
      } else {
        error.textContent = fmt(T.failed, { message: errorText(data) || response.status });
        error.hidden = false;
      }
    } catch {
      error.textContent = T.network;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  // --- A proposal rings until someone here has seen it -------------------------------------

  const SEEN_KEY = "csu.board.proposalsSeen"; // sessionStorage: [id, …]
  let audio = null;

  function seenProposals() {
    try {
      return new Set(JSON.parse(sessionStorage.getItem(SEEN_KEY) || "[]"));
    } catch {
      return new Set();
    }
  }

  function ringing() {
    const seen = seenProposals();
    return $$("[data-testid=proposal]", sections).some((card) => !seen.has(card.dataset.proposal));
  }

  // Browsers allow sound only after a gesture on the page: any click unlocks it.
  document.addEventListener(
    "pointerdown",
    () => {
      if (!audio && window.AudioContext) audio = new AudioContext();
      if (audio && audio.state === "suspended") audio.resume();
    },
    { capture: true },
  );

  setInterval(() => {
    if (!audio || audio.state !== "running" || !ringing()) return;
    for (const [start, frequency] of [[0, 880], [0.25, 660]]) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      const t0 = audio.currentTime + start;
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.2);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(t0);
      oscillator.stop(t0 + 0.22);
    }
  }, 2000);

  sections.addEventListener("click", (event) => {
    const card = event.target.closest("[data-action=proposal-seen]")?.closest("[data-testid=proposal]");
    if (!card) return;
    const seen = seenProposals();
    seen.add(card.dataset.proposal);
    try {
      sessionStorage.setItem(SEEN_KEY, JSON.stringify([...seen]));
    } catch {
      /* storage refused: rings again after a reload */
    }
    event.target.disabled = true;
  });

  // --- Triggering ---------------------------------------------------------------------------

  const form = document.getElementById("activate-form");
  const result = document.getElementById("activate-result");

  form.elements.scenario.addEventListener("change", () => {
    $("[data-field=intrusion-hint]", form).hidden = form.elements.scenario.value !== "intrusion";
    $("[data-field=shelter-choice]", form).hidden = form.elements.scenario.value !== "evacuation";
  });

  $("#school-filter").addEventListener("input", (event) => {
    const text = event.target.value.trim().toLowerCase();
    $$("#school-list label", form).forEach((label) => {
      label.hidden = Boolean(text) && !label.dataset.name.includes(text);
    });
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    result.textContent = "";
    const zones = $$("input[name=zones]:checked", form).map((input) => Number(input.value));
    const schools = $$("input[name=schools]:checked", form).map((input) => input.value);
    if (!zones.length && !schools.length) {
      showErrors(form, { schools: [T.pick_scope] });
      return;
    }
    const body = {
      scenario: form.elements.scenario.value,
      title: form.elements.title.value.trim(),
      zones,
      schools,
      drill: form.elements.drill.checked,
    };
    if (body.scenario === "evacuation" && form.elements.shelter.value) {
      body.shelter = Number(form.elements.shelter.value);
    }
    const button = $("[data-testid=btn-activate]", form);
    button.disabled = true;
    try {
      const { response, data } = await post(config.urls.activations, body);
      if (response.ok) {
        form.reset();
        $$("#school-list label", form).forEach((label) => { label.hidden = false; });
        result.textContent = T.activated;
        refreshSoon();
      } else if (response.status === 400 && data) {
        showErrors(form, data);
      } else {
        showErrors(form, {}, fmt(T.failed, { message: errorText(data) || response.status }));
      }
    } catch {
      showErrors(form, {}, T.network);
    } finally {
      button.disabled = false;
    }
  });

  // --- Centres d'accueil --------------------------------------------------------------------

  const shelterRows = document.getElementById("shelter-rows");

  function shelterRow(shelter) {
    const row = document.createElement("tr");
    row.dataset.shelter = String(shelter.id);
    row.dataset.full = shelter.is_full ? "true" : "false";
    row.dataset.open = shelter.is_open ? "true" : "false";
    row.classList.toggle("full", shelter.is_full);

    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = shelter.name;
    const place = document.createElement("small");
    place.textContent = ` ${shelter.commune && shelter.commune.name ? shelter.commune.name : ""} · ${shelter.is_open ? T.open : T.closed}`;
    name.appendChild(place);

    const occupancy = document.createElement("td");
    occupancy.className = "num";
    occupancy.dataset.field = "occupancy";
    occupancy.textContent = `${shelter.occupancy} / ${shelter.capacity}`;
    if (shelter.is_full) {
      const badge = document.createElement("span");
      badge.className = "badge full";
      badge.textContent = T.full;
      occupancy.append(" ", badge);
    }

    const update = document.createElement("td");
    const shelterForm = document.createElement("form");
    shelterForm.className = "occupancy";
    const input = document.createElement("input");
    input.type = "number";
    input.min = "0";
    input.inputMode = "numeric";
    input.name = "occupancy";
    input.value = String(shelter.occupancy);
    input.dataset.testid = `field-occupancy-${shelter.id}`;
    input.setAttribute("aria-label", `${shelter.name} : occupation`);
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = T.record;
    button.dataset.testid = `btn-occupancy-${shelter.id}`;
    const warning = document.createElement("p");
    warning.className = "warning";
    warning.dataset.testid = `shelter-warning-${shelter.id}`;
    warning.setAttribute("role", "status");
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "shelter-open";
    toggle.dataset.testid = `btn-shelter-open-${shelter.id}`;
    toggle.textContent = shelter.is_open ? T.close_shelter : T.open_shelter;
    toggle.setAttribute("aria-label", `${toggle.textContent} : ${shelter.name}`);
    toggle.addEventListener("click", () => setShelterOpen(shelter.id, !shelter.is_open, toggle, warning));
    shelterForm.append(input, button, toggle, warning);
    shelterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      recordOccupancy(shelter.id, input.value, warning);
    });
    update.appendChild(shelterForm);

    row.append(name, occupancy, update);
    return row;
  }

  async function loadShelters() {
    try {
      const response = await fetch(config.urls.shelters, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      const shelters = Array.isArray(data) ? data : data.results || [];
      const editing = shelterRows.contains(document.activeElement);
      if (editing) return; // do not pull the field from under the operator's fingers
      shelterRows.replaceChildren(...shelters.map(shelterRow));
      if (!shelters.length) {
        const row = document.createElement("tr");
        const cell = document.createElement("td");
        cell.colSpan = 3;
        cell.className = "muted";
        cell.textContent = T.no_shelter;
        row.appendChild(cell);
        shelterRows.appendChild(row);
      }
    } catch {
      /* offline: the next refresh */
    }
  }

  // A live `shelter` event: redraw the row, unless the operator is typing in it.
  function showShelter(shelter) {
    const old = $(`tr[data-shelter="${shelter.id}"]`, shelterRows);
    if (!old) {
      // A centre that just opened elsewhere, or the first one: the list decides.
      if (!shelterRows.contains(document.activeElement)) loadShelters();
      return;
    }
    if (old.contains(document.activeElement) && $("input", old) === document.activeElement) {
      // Keep the field under the operator's fingers; update what they do not type.
      const fresh = shelterRow(shelter);
      $("[data-field=occupancy]", old).replaceWith($("[data-field=occupancy]", fresh));
      old.dataset.full = fresh.dataset.full;
      old.dataset.open = fresh.dataset.open;
      old.classList.toggle("full", shelter.is_full);
      $("th", old).replaceWith($("th", fresh));
      $(".shelter-open", old).replaceWith($(".shelter-open", fresh));
      return;
    }
    const note = $(`[data-testid=shelter-warning-${shelter.id}]`, old);
    const fresh = shelterRow(shelter);
    const freshNote = $(`[data-testid=shelter-warning-${shelter.id}]`, fresh);
    freshNote.textContent = note.textContent;
    freshNote.className = note.className;
    old.replaceWith(fresh);
  }

  async function setShelterOpen(id, open, button, warning) {
    warning.textContent = "";
    button.disabled = true;
    try {
      const url = (config.urls.shelter_open || config.urls.occupancy.replace("occupancy/", "open/")).replace("{id}", String(id));
      const { response, data } = await post(url, { open });
      if (response.ok && data) {
        showShelter(data);
      } else {
        button.disabled = false;
        warning.textContent = fmt(T.failed, { message: errorText(data) || response.status });
      }
    } catch {
      button.disabled = false;
      warning.textContent = T.network;
    }
  }

  async function recordOccupancy(id, value, warning) {
    warning.textContent = "";
    try {
      const { response, data } = await post(config.urls.occupancy.replace("{id}", String(id)), {
        occupancy: value === "" ? null : Number(value),
      });
      if (response.ok && data) {
        const fresh = shelterRow(data);
        const old = $(`tr[data-shelter="${id}"]`, shelterRows);
        if (old) old.replaceWith(fresh);
        const note = $(`[data-testid=shelter-warning-${id}]`, fresh);
        note.textContent = data.warning || T.saved;
        note.classList.toggle("is-warning", Boolean(data.warning));
      } else {
        warning.textContent = fmt(T.failed, { message: errorText(data) || response.status });
      }
    } catch {
      warning.textContent = T.network;
    }
  }

  // --- The live connection ------------------------------------------------------------------

  function startLive() {
    const status = document.getElementById("live-status");
    connectLive({
      url: liveUrl(config.urls.ws),
      onMessage: onLive,
      onState(state) {
        status.dataset.state = state;
        status.textContent = state === "connected" ? T.live_ok : T.live_lost;
      },
      onOpen({ reconnected }) {
        if (reconnected) refreshSections(); // catch up on what was missed
      },
    });
  }

  tick();
  setInterval(tick, 15000);
  loadShelters();
  setInterval(loadShelters, 60000);
  startLive();
})();
