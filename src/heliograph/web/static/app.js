// Heliograph dashboard: what every page shares. The REST API is called with the session cookie,
// the CSRF token echoed from its cookie, and the organization the page shows.
"use strict";

const Heliograph = (() => {
  function cookie(name) {
    const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  function organizationId() {
    const meta = document.querySelector('meta[name="organization-id"]');
    return meta ? meta.content : null;
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = cookie("heliograph_csrf") || "";
    const organization = organizationId();
    if (organization) headers["Heliograph-Organization-Id"] = organization;
    const response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let payload = null;
    try { payload = await response.json(); } catch (_) { payload = null; }
    const error = response.ok ? null : (payload && payload.error) || `${response.status} ${response.statusText}`;
    return { ok: response.ok, status: response.status, data: payload ? payload.data : null, error };
  }

  function showError(form, message) {
    const box = form.querySelector(".form-error");
    if (!box) { alert(message); return; }
    box.textContent = message || "";
    box.hidden = !message;
  }

  function formJson(form) {
    const body = {};
    for (const [name, value] of new FormData(form).entries()) {
      if (value !== "") body[name] = value;
    }
    return body;
  }

  function chooseOrganization(id) {
    document.cookie = `heliograph_org=${encodeURIComponent(id)}; path=/; SameSite=Lax; max-age=31536000`;
  }

  function localTimes(root) {
    for (const time of root.querySelectorAll("time[datetime]")) {
      const moment = new Date(time.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      time.title = time.textContent;
      time.textContent = moment.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    }
  }

  // j/k (or arrows) move through a list's rows, Enter opens the current one, / focuses search.
  function rowsOf(table) { return Array.from(table.querySelectorAll("tbody tr")); }

  function moveCurrent(table, step) {
    const rows = rowsOf(table);
    if (!rows.length) return;
    const index = rows.findIndex((row) => row.classList.contains("current"));
    const next = Math.max(0, Math.min(rows.length - 1, index < 0 ? 0 : index + step));
    rows.forEach((row) => row.classList.remove("current"));
    rows[next].classList.add("current");
    rows[next].setAttribute("aria-selected", "true");
    rows[next].scrollIntoView({ block: "nearest" });
  }

  function openRow(row) {
    const link = row.dataset.href || (row.querySelector("a[href]") || {}).href;
    if (link) window.location.href = link;
  }

  function onKey(event) {
    const target = event.target;
    if (target.closest("input, textarea, select, [contenteditable]") || event.metaKey || event.ctrlKey || event.altKey) return;
    const table = document.querySelector("table[data-nav]");
    if (event.key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    if (!table) return;
    if (event.key === "j" || event.key === "ArrowDown") { event.preventDefault(); moveCurrent(table, 1); }
    else if (event.key === "k" || event.key === "ArrowUp") { event.preventDefault(); moveCurrent(table, -1); }
    else if (event.key === "Enter") {
      const row = table.querySelector("tbody tr.current");
      if (row) { event.preventDefault(); openRow(row); }
    }
  }

  function wire() {
    localTimes(document);
    document.addEventListener("keydown", onKey);

    for (const form of document.querySelectorAll("form[data-autosubmit]")) {
      form.addEventListener("change", () => form.submit());
    }

    for (const row of document.querySelectorAll("tr[data-href]")) {
      row.addEventListener("click", (event) => {
        if (event.target.closest("a, button, input, select, label")) return;
        openRow(row);
      });
    }

    for (const form of document.querySelectorAll("form[data-auth-form]")) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        showError(form, "");
        const result = await api("POST", form.dataset.authForm, formJson(form));
        if (!result.ok) { showError(form, result.error); return; }
        if (result.data && result.data.organization_id) chooseOrganization(result.data.organization_id);
        if (form.dataset.done) { form.replaceWith(Object.assign(document.createElement("p"), { className: "notice", textContent: form.dataset.done })); return; }
        window.location.href = form.dataset.next || "/";
      });
    }

    for (const form of document.querySelectorAll("form[data-accept-invitation]")) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const result = await api("POST", "/v1/invitations/accept", { token: form.dataset.acceptInvitation });
        if (!result.ok) { showError(form, result.error); return; }
        if (result.data && result.data.organization_id) chooseOrganization(result.data.organization_id);
        window.location.href = "/";
      });
    }

    for (const button of document.querySelectorAll("[data-sign-out]")) {
      button.addEventListener("click", async () => {
        await api("POST", "/v1/auth/logout", {});
        window.location.href = "/login";
      });
    }

    const switcher = document.querySelector("[data-switch-organization]");
    if (switcher) {
      switcher.addEventListener("change", () => {
        chooseOrganization(switcher.value);
        // A detail page belongs to the old organization: go to its list instead.
        window.location.href = "/" + window.location.pathname.split("/")[1];
      });
    }
  }

  document.addEventListener("DOMContentLoaded", wire);
  return { api, cookie, organizationId, showError, formJson, localTimes };
})();
