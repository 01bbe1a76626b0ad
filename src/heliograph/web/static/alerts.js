// /alerts: the new-alert form becomes a POST /v1/alerts body (filter parsed as JSON, channels
// from the webhook URL and the e-mail list); Enable/Disable is a PATCH, Delete asks for a second
// click, then a DELETE. Each success reloads the page so the list shows the change.
"use strict";

(() => {
  const ARMED_MS = 4000;

  function number(form, name) {
    const value = form.elements[name].value.trim();
    return value === "" ? undefined : Number(value);
  }

  function channels(form) {
    const found = [];
    const url = form.elements.webhook.value.trim();
    if (url) found.push({ type: "webhook", url });
    const to = form.elements.emails.value.split(/[\s,;]+/).filter((address) => address);
    if (to.length) found.push({ type: "email", to });
    return found;
  }

  // The body, or a message saying what is wrong before anything is sent.
  function bodyOf(form) {
    const text = form.elements.filter.value.trim();
    let filter = "all";
    if (text) {
      try { filter = JSON.parse(text); } catch (_) { return { error: "The filter is not valid JSON." }; }
    }
    const found = channels(form);
    if (!found.length) return { error: "Add a webhook URL or an e-mail address." };
    const body = {
      name: form.elements.name.value,
      metric: form.elements.metric.value,
      threshold: number(form, "threshold"),
      window_minutes: number(form, "window_minutes"),
      min_requests: number(form, "min_requests") ?? 0,
      filter,
      channels: found,
    };
    if (body.metric === "latency") body.aggregation = form.elements.aggregation.value;
    return { body };
  }

  async function create(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button[type=submit]");
    Heliograph.showError(form, "");
    const { body, error } = bodyOf(form);
    if (error) { Heliograph.showError(form, error); return; }
    button.disabled = true;
    const result = await Heliograph.api("POST", "/v1/alerts", body);
    button.disabled = false;
    if (!result.ok) { Heliograph.showError(form, result.error); return; }
    window.location.reload();
  }

  function showLatency(form) {
    form.querySelector("[data-for-latency]").hidden = form.elements.metric.value !== "latency";
  }

  function report(button, result) {
    const box = button.closest("td").querySelector(".form-error");
    box.textContent = result.error || "";
    box.hidden = result.ok;
  }

  async function toggle(button) {
    const enabled = button.dataset.enabled !== "true";
    button.disabled = true;
    const result = await Heliograph.api("PATCH", `/v1/alerts/${button.dataset.alertToggle}`, { enabled });
    button.disabled = false;
    if (result.ok) window.location.reload(); else report(button, result);
  }

  // The first click arms the button, the second within a few seconds deletes.
  async function remove(button) {
    if (button.dataset.armed === undefined) {
      const label = button.textContent;
      button.dataset.armed = "";
      button.textContent = `Delete ${button.dataset.name}? Click again`;
      setTimeout(() => { delete button.dataset.armed; button.textContent = label; }, ARMED_MS);
      return;
    }
    button.disabled = true;
    const result = await Heliograph.api("DELETE", `/v1/alerts/${button.dataset.alertDelete}`);
    button.disabled = false;
    if (result.ok) window.location.reload(); else report(button, result);
  }

  function wire() {
    const form = document.getElementById("new-alert");
    if (form) {
      form.addEventListener("submit", create);
      form.elements.metric.addEventListener("change", () => showLatency(form));
      showLatency(form);
    }
    for (const button of document.querySelectorAll("[data-alert-toggle]")) {
      button.addEventListener("click", () => toggle(button));
    }
    for (const button of document.querySelectorAll("[data-alert-delete]")) {
      button.addEventListener("click", () => remove(button));
    }
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
