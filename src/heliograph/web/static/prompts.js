// /prompts pages: forms sent to the REST API (data-api="METHOD /path"), the body editor (message
// rows added and removed, the declared {{hc:name:type}} variables kept up to date), saving a new
// prompt or version, and the playground, whose answer is read from the SSE stream as it arrives.
"use strict";

(() => {
  const ARMED_MS = 4000;
  const VARIABLE = /\{\{\s*hc\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*\}\}/g;
  const TYPES = ["string", "number", "boolean"];

  // ---- plain forms: rename, tags, deploy, undeploy, delete ----

  function listOf(text) {
    return text.split(",").map((part) => part.trim()).filter((part) => part !== "");
  }

  function fieldsOf(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      if (field.type === "checkbox") body[field.name] = field.checked;
      else if (field.dataset.list !== undefined) {
        if (field.value.trim() !== "" || field.dataset.keep !== undefined) body[field.name] = listOf(field.value);
      } else if (field.value !== "") body[field.name] = field.value;
    }
    return body;
  }

  // The first click arms a destructive button ("Delete ...? Click again"); the second acts.
  function confirmed(form, button) {
    if (!form.dataset.confirm || button.dataset.armed !== undefined) return true;
    const label = button.textContent;
    button.dataset.armed = "";
    button.textContent = form.dataset.confirm + " Click again";
    setTimeout(() => { delete button.dataset.armed; button.textContent = label; }, ARMED_MS);
    return false;
  }

  function refused(result) {
    return `${result.status}: ${result.error}`;
  }

  async function sendForm(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = event.submitter || form.querySelector("button[type=submit]");
    if (!confirmed(form, button)) return;
    Heliograph.showError(form, "");
    const [method, path] = form.dataset.api.split(" ");
    button.disabled = true;
    const result = await Heliograph.api(method, path, method === "DELETE" ? undefined : fieldsOf(form));
    button.disabled = false;
    if (!result.ok) { Heliograph.showError(form, refused(result)); return; }
    if (form.dataset.then === "reload") window.location.reload();
    else window.location.href = form.dataset.then;
  }

  // ---- the body editor ----

  function renumber(editor) {
    editor.querySelectorAll("[data-message]").forEach((row, index) => {
      const number = index + 1;
      row.querySelector("legend").textContent = `Message ${number}`;
      for (const [field, prefix] of [["role", "role"], ["content", "content"]]) {
        const control = row.querySelector(`[data-field="${field}"]`);
        control.id = `${prefix}-${number}`;
        control.closest("div").querySelector("label").htmlFor = control.id;
      }
      row.querySelector("[data-remove-message]").setAttribute("aria-label", `Remove message ${number}`);
    });
  }

  function addMessage(editor) {
    const template = editor.querySelector("template[data-message-template]");
    const row = template.content.firstElementChild.cloneNode(true);
    editor.querySelector("[data-messages]").append(row);
    renumber(editor);
    row.querySelector("textarea").focus();
  }

  function declared(editor) {
    const found = new Map();
    for (const control of editor.querySelectorAll("[data-field]")) {
      for (const match of control.value.matchAll(VARIABLE)) {
        if (!found.has(match[1])) found.set(match[1], match[2]);
      }
    }
    return found;
  }

  function showVariables(editor) {
    const list = editor.querySelector("[data-variables]");
    const found = declared(editor);
    list.replaceChildren(...Array.from(found, ([name, type]) => {
      const item = document.createElement("li");
      const code = Object.assign(document.createElement("code"), { textContent: name });
      const badge = Object.assign(document.createElement("span"), { className: "badge", textContent: type });
      if (!TYPES.includes(type)) {
        badge.classList.add("bad-type");
        badge.textContent = `${type}: not a type (string, number, boolean)`;
      }
      item.append(code, " ", badge);
      return item;
    }));
    editor.querySelector("[data-no-variables]").hidden = found.size > 0;
  }

  function wireEditor(editor) {
    editor.querySelector("[data-add-message]").addEventListener("click", () => { addMessage(editor); showVariables(editor); });
    editor.addEventListener("click", (event) => {
      const remove = event.target.closest("[data-remove-message]");
      if (!remove) return;
      remove.closest("[data-message]").remove();
      renumber(editor);
      showVariables(editor);
    });
    editor.addEventListener("input", () => showVariables(editor));
  }

  class BodyError extends Error {}

  function parsedJson(text, what) {
    try { return JSON.parse(text); } catch (error) { throw new BodyError(`${what} is not JSON: ${error.message}`); }
  }

  function message(row, index) {
    const extra = row.dataset.extra ? JSON.parse(row.dataset.extra) : {};
    const text = row.querySelector('[data-field="content"]').value;
    const content = row.dataset.json !== undefined ? parsedJson(text, `Message ${index + 1}'s content`) : text;
    return { ...extra, role: row.querySelector('[data-field="role"]').value, content };
  }

  function promptBody(editor) {
    const paramsText = editor.querySelector('[data-field="params"]').value.trim();
    const params = paramsText ? parsedJson(paramsText, "Other parameters") : {};
    if (params === null || typeof params !== "object" || Array.isArray(params)) {
      throw new BodyError("Other parameters must be a JSON object, such as {\"temperature\": 0.2}");
    }
    const messages = Array.from(editor.querySelectorAll("[data-message]"), message);
    const model = editor.querySelector('[data-field="model"]').value.trim();
    return Object.assign({ model, messages }, params, { model, messages });
  }

  // Create a prompt (-> its page) or save a new version (-> the prompt's page at that version).
  async function savePrompt(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button[type=submit]");
    Heliograph.showError(form, "");
    let body;
    try {
      body = { ...fieldsOf(form), promptBody: promptBody(form.querySelector("[data-body-editor]")) };
    } catch (error) {
      if (!(error instanceof BodyError)) throw error;
      Heliograph.showError(form, error.message);
      return;
    }
    const creating = form.dataset.promptForm === "create";
    if (creating && !body.tags) body.tags = [];
    button.disabled = true;
    const result = await Heliograph.api("POST", creating ? "/v1/prompt-2025" : "/v1/prompt-2025/update", body);
    button.disabled = false;
    if (!result.ok) { Heliograph.showError(form, refused(result)); return; }
    window.location.href = creating
      ? `/prompts/${encodeURIComponent(result.data.id)}`
      : `${form.dataset.promptPath}?version=${encodeURIComponent(result.data.id)}`;
  }

  // ---- the playground ----

  function inputsOf(form) {
    const inputs = {};
    for (const field of form.querySelectorAll("[data-input]")) {
      const type = field.dataset.type;
      if (type === "boolean") inputs[field.dataset.input] = field.checked;
      else if (field.value !== "") inputs[field.dataset.input] = type === "number" ? Number(field.value) : field.value;
    }
    return inputs;
  }

  function runBody(form) {
    const body = { promptVersionId: form.dataset.versionId, inputs: inputsOf(form), stream: true };
    for (const field of form.querySelectorAll("[data-option]")) {
      const value = field.value.trim();
      if (value === "") continue;
      const option = field.dataset.option;
      if (option === "message") body.messages = [{ role: "user", content: value }];
      else body[option] = field.type === "number" ? Number(value) : value;
    }
    return body;
  }

  function errorText(status, payload, fallback) {
    let error = payload && payload.error;
    if (error && typeof error === "object") error = error.message || JSON.stringify(error);
    return `${status}: ${error || fallback}`;
  }

  // One SSE line: `data: {...}` appends the chunk's text; `data: [DONE]` and the rest are skipped.
  function readLine(line, answer) {
    if (!line.startsWith("data:")) return null;
    const data = line.slice(5).trim();
    if (data === "" || data === "[DONE]") return null;
    let chunk;
    try { chunk = JSON.parse(data); } catch (_) { return null; }
    if (chunk.error) return errorText("stream", chunk, "the provider failed");
    const choice = (chunk.choices || [])[0];
    const text = choice && choice.delta && choice.delta.content;
    if (typeof text === "string") answer.textContent += text;
    return null;
  }

  async function readStream(response, answer) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let failure = null;
    for (;;) {
      const { done, value } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const lines = buffer.split(/\r?\n/);
      buffer = done ? "" : lines.pop();
      for (const line of lines) failure = readLine(line, answer) || failure;
      if (done) return failure;
    }
  }

  async function readWhole(response, answer) {
    const payload = await response.json();
    const choice = (payload.choices || [])[0];
    answer.textContent = (choice && choice.message && choice.message.content) || JSON.stringify(payload, null, 2);
  }

  async function run(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button[type=submit]");
    const card = document.querySelector('[aria-labelledby="answer-heading"]');
    const status = card.querySelector("[data-run-status]");
    const answer = card.querySelector("[data-answer]");
    const link = card.querySelector("[data-request-link]");
    Heliograph.showError(form, "");
    answer.textContent = "";
    answer.hidden = true;
    link.hidden = true;
    status.textContent = "Running…";
    button.disabled = true;
    try {
      await runAndShow(form, status, answer, link);
    } catch (error) {
      status.textContent = "Failed.";
      Heliograph.showError(form, `The answer could not be read: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function runAndShow(form, status, answer, link) {
    const headers = { "Content-Type": "application/json", "Accept": "text/event-stream, application/json" };
    headers["X-CSRF-Token"] = Heliograph.cookie("heliograph_csrf") || "";
    const organization = Heliograph.organizationId();
    if (organization) headers["Heliograph-Organization-Id"] = organization;
    const response = await fetch("/v1/prompt-2025/playground", {
      method: "POST", headers, credentials: "same-origin", body: JSON.stringify(runBody(form)),
    });
    const requestId = response.headers.get("Helicone-Id");
    if (requestId) {
      link.querySelector("a").href = `/requests/${encodeURIComponent(requestId)}`;
      link.hidden = false;
    }
    if (!response.ok) {
      let payload = null;
      try { payload = await response.json(); } catch (_) { payload = null; }
      status.textContent = "Refused.";
      Heliograph.showError(form, errorText(response.status, payload, response.statusText));
      return;
    }
    answer.hidden = false;
    status.textContent = "Streaming…";
    const streamed = (response.headers.get("Content-Type") || "").startsWith("text/event-stream");
    let failure = null;
    if (streamed) failure = await readStream(response, answer);
    else await readWhole(response, answer);
    status.textContent = failure ? "Failed while streaming." : "Done.";
    if (failure) Heliograph.showError(form, failure);
  }

  function wire() {
    for (const form of document.querySelectorAll("form[data-api]")) form.addEventListener("submit", sendForm);
    for (const editor of document.querySelectorAll("[data-body-editor]")) wireEditor(editor);
    for (const form of document.querySelectorAll("form[data-prompt-form]")) form.addEventListener("submit", savePrompt);
    const playground = document.querySelector("form[data-playground]");
    if (playground) playground.addEventListener("submit", run);
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
