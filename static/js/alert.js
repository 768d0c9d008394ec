// The actions of one alert's page: the dashboard console's (acknowledge, comment,
// resolve), posted to the same API; the page reloads to show the new timeline.

import { format, gettext } from "./i18n.js";

const section = document.getElementById("alert-actions");

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

const PATHS = { acknowledge: "acknowledge/", comment: "comments/", resolve: "resolve/" };

async function submit(form) {
  const action = form.dataset.form;
  const fields = Object.fromEntries(new FormData(form));
  const body = action === "comment" ? { text: fields.text } : { comment: fields.comment || "" };
  const error = section.querySelector('[data-role="error"]');
  error.textContent = "";
  let response;
  try {
    response = await fetch(section.dataset.alertUrl + PATHS[action], {
      method: "POST",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(body),
    });
  } catch {
    error.textContent = gettext("Réseau indisponible\u202f: réessayez.");
    return;
  }
  if (response.ok) {
    window.location.reload();
    return;
  }
  const data = await response.json().catch(() => null);
  error.textContent =
    data && typeof data === "object"
      ? Object.values(data).flat().join(" ")
      : format(gettext("Erreur du serveur (%(status)s)."), { status: response.status });
}

if (section) {
  section.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (button) {
      for (const form of section.querySelectorAll("[data-form]")) {
        form.hidden = form.dataset.form !== button.dataset.action;
      }
      section.querySelector(`[data-form="${button.dataset.action}"] textarea`)?.focus();
    } else if (event.target.closest("[data-cancel]")) {
      event.target.closest("form").hidden = true;
    }
  });
  section.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(event.target);
  });
}
