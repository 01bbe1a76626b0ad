// /webhooks: the create form and each webhook's buttons call the REST API; a destructive action
// asks for a second click; the HMAC key is revealed on click; the page reloads to show changes.
"use strict";

(() => {
  const ARMED_MS = 4000;

  function filtersOf(text) {
    // "key=value" per line -> [{key, value}]; a line without "=" is sent as a key with no value,
    // so the API names what is wrong with it.
    return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const at = line.indexOf("=");
      return at < 0 ? { key: line, value: "" } : { key: line.slice(0, at).trim(), value: line.slice(at + 1).trim() };
    });
  }

  async function create(event) {
    event.preventDefault();
    const form = event.currentTarget;
    Heliograph.showError(form, "");
    const rate = form.elements.sampleRate.value;
    const body = {
      destination: form.elements.destination.value.trim(),
      config: {
        sampleRate: rate === "" ? 100 : Number(rate),
        propertyFilters: filtersOf(form.elements.propertyFilters.value),
      },
      includeData: form.elements.includeData.checked,
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await Heliograph.api("POST", "/v1/webhooks", body);
    button.disabled = false;
    if (!result.ok) { Heliograph.showError(form, result.error); return; }
    window.location.reload();
  }

  // The first click arms the button, the second within a few seconds acts.
  function confirmed(form, button) {
    if (!form.dataset.confirm || button.dataset.armed !== undefined) return true;
    const label = button.textContent;
    button.dataset.armed = "";
    button.textContent = form.dataset.confirm + " Click again";
    setTimeout(() => { delete button.dataset.armed; button.textContent = label; }, ARMED_MS);
    return false;
  }

  async function act(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button[type=submit]");
    if (!confirmed(form, button)) return;
    Heliograph.showError(form, "");
    const [method, path] = form.dataset.webhookAction.split(" ");
    button.disabled = true;
    const result = await Heliograph.api(method, path, method === "DELETE" ? undefined : {});
    button.disabled = false;
    if (!result.ok) { Heliograph.showError(form, result.error); return; }
    window.location.reload();
  }

  function reveal(event) {
    const button = event.currentTarget;
    const key = document.getElementById(button.dataset.reveal);
    key.hidden = !key.hidden;
    button.textContent = key.hidden ? "Reveal" : "Hide";
    button.setAttribute("aria-expanded", String(!key.hidden));
  }

  function wire() {
    const form = document.querySelector("form[data-webhook-create]");
    if (form) form.addEventListener("submit", create);
    for (const each of document.querySelectorAll("form[data-webhook-action]")) each.addEventListener("submit", act);
    for (const button of document.querySelectorAll("button[data-reveal]")) button.addEventListener("click", reveal);
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
