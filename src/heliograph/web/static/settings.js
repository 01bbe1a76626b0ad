// /settings: every form with data-api is sent to the REST API ("METHOD /path"); a destructive
// one asks for a second click; a secret in the answer is shown once in a dialog, then the page
// reloads so that the lists show the change.
"use strict";

(() => {
  const ARMED_MS = 4000;

  function put(body, name, value) {
    // "limits.spendLimitUsd" -> { limits: { spendLimitUsd } }
    const parts = name.split(".");
    let target = body;
    for (const part of parts.slice(0, -1)) target = target[part] = target[part] || {};
    target[parts[parts.length - 1]] = value;
  }

  function bodyOf(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      if (field.type === "checkbox") {
        if (!body[field.name]) body[field.name] = [];
        if (field.checked) body[field.name].push(field.value);
        continue;
      }
      // A field that only means something with another (a spend period with its limit).
      const partner = field.dataset.with && form.querySelector("#" + field.dataset.with);
      if (field.value === "" || (partner && partner.value === "")) continue;
      put(body, field.name, field.type === "number" ? Number(field.value) : field.value);
    }
    return body;
  }

  // The first click arms the button ("Confirm?"), the second within a few seconds acts.
  function confirmed(form, button) {
    if (!form.dataset.confirm || button.dataset.armed !== undefined) return true;
    const label = button.textContent;
    button.dataset.armed = "";
    button.textContent = form.dataset.confirm + " Click again";
    setTimeout(() => {
      delete button.dataset.armed;
      button.textContent = label;
    }, ARMED_MS);
    return false;
  }

  function showOnce(title, value, warning) {
    const dialog = document.getElementById("shown-once");
    dialog.querySelector("h2").textContent = title;
    dialog.querySelector("input").value = value;
    const note = dialog.querySelector("[data-once-warning]");
    note.textContent = warning || "";
    note.hidden = !warning;
    dialog.showModal();
    dialog.querySelector("input").select();
  }

  async function copy(dialog) {
    const input = dialog.querySelector("input");
    const status = dialog.querySelector("[data-copied]");
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = "Copied.";
    } catch (_) {
      input.select();  // the clipboard may be refused: leave it selected for Ctrl+C
      status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected text.";
    }
  }

  async function send(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = event.submitter || form.querySelector("button[type=submit]");
    if (!confirmed(form, button)) return;
    Heliograph.showError(form, "");
    const [method, path] = form.dataset.api.split(" ");
    button.disabled = true;
    const result = await Heliograph.api(method, path, method === "DELETE" ? undefined : bodyOf(form));
    button.disabled = false;
    if (!result.ok) { Heliograph.showError(form, result.error); return; }
    if (form.dataset.show) {
      const data = result.data || {};
      showOnce(form.dataset.showTitle, data[form.dataset.show], data.warning);
      return;
    }
    window.location.reload();
  }

  function wire() {
    for (const form of document.querySelectorAll("form[data-api]")) form.addEventListener("submit", send);
    const dialog = document.getElementById("shown-once");
    if (!dialog) return;
    dialog.querySelector("[data-copy]").addEventListener("click", () => copy(dialog));
    dialog.querySelector("[data-once-done]").addEventListener("click", () => dialog.close());
    // However it closes (Done, Escape), the secret leaves the page and the lists catch up.
    dialog.addEventListener("close", () => {
      dialog.querySelector("input").value = "";
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
