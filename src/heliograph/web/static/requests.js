// The request list: the filter builder (AND/OR groups over the server's fields), the column
// picker, and new requests arriving live over server-sent events without moving the reader.
"use strict";

(() => {
  const GROUP_LABELS = { and: "all of these (AND)", or: "any of these (OR)" };
  const NUMERIC = new Set(["number", "cost"]);

  function element(tag, properties, children) {
    const node = Object.assign(document.createElement(tag), properties || {});
    for (const child of children || []) node.append(child);
    return node;
  }

  function option(value, label, selected) {
    return element("option", { value, textContent: label, selected: Boolean(selected) });
  }

  function navigate(change) {
    const params = new URLSearchParams(window.location.search);
    change(params);
    params.delete("cursor");
    params.delete("offset");
    window.location.href = "/requests?" + params.toString();
  }

  // ---- Filter builder -------------------------------------------------------------------
  function Builder(root, data) {
    const fields = new Map(data.fields.map((field) => [field.name, field]));
    const firstField = data.fields.find((field) => field.name === "model") || data.fields[0];

    function fieldOf(name) {
      if (fields.has(name)) return fields.get(name);
      // A property or score the picker does not list (older than the range): still editable.
      const kind = name.startsWith("score:") ? "number" : "text";
      const known = kind === "number" ? fields.get("latency") : fields.get("model");
      const field = { name, label: name, kind, ops: known.ops };
      fields.set(name, field);
      return field;
    }

    function toModel(node) {
      if (node && (Array.isArray(node.and) || Array.isArray(node.or))) {
        const op = Array.isArray(node.and) ? "and" : "or";
        return { type: "group", op, items: node[op].map(toModel) };
      }
      return { type: "condition", field: node.field, op: node.op, value: node.value };
    }

    function fromModel(item) {
      if (item.type === "group") {
        const items = item.items.map(fromModel).filter((child) => child !== null);
        return items.length ? { [item.op]: items } : null;
      }
      const field = fieldOf(item.field);
      let value = item.value;
      if (field.kind === "bool") value = value === true || value === "true";
      else if (value === "" || value === null || value === undefined) return null;
      else if (NUMERIC.has(field.kind) && String(value).trim() !== "" && !Number.isNaN(Number(value))) value = Number(value);
      return { field: item.field, op: item.op, value };
    }

    function conditionView(item, parent, list) {
      const row = element("li", { className: "condition" });
      fieldOf(item.field); // a field the server did not list gets an option too
      const fieldSelect = element("select", { ariaLabel: "Field" });
      for (const field of fields.values()) fieldSelect.append(option(field.name, field.label, field.name === item.field));
      const opSelect = element("select", { ariaLabel: "Operator" });
      const valueHolder = element("span", { className: "value" });

      function fillOperators() {
        const field = fieldOf(item.field);
        opSelect.replaceChildren(...field.ops.map((op) => option(op, op, op === item.op)));
        if (!field.ops.includes(item.op)) item.op = field.ops[0];
        opSelect.value = item.op;
        let input;
        if (field.kind === "bool") {
          input = element("select", { ariaLabel: "Value" }, [option("true", "true"), option("false", "false")]);
          item.value = item.value === false || item.value === "false" ? "false" : "true";
          input.value = item.value;
        } else {
          const type = NUMERIC.has(field.kind) ? "number" : "text";
          input = element("input", { ariaLabel: "Value", type, step: "any", value: item.value === undefined || item.value === null ? "" : String(item.value) });
          if (field.kind === "timestamp") input.placeholder = "2026-01-31T12:00:00Z";
        }
        input.addEventListener("input", () => { item.value = input.value; });
        input.addEventListener("change", () => { item.value = input.value; });
        input.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); apply(); } });
        valueHolder.replaceChildren(input);
      }

      fieldSelect.addEventListener("change", () => { item.field = fieldSelect.value; item.value = ""; fillOperators(); });
      opSelect.addEventListener("change", () => { item.op = opSelect.value; });
      const remove = element("button", { type: "button", className: "link", textContent: "Remove", ariaLabel: "Remove this condition" });
      remove.addEventListener("click", () => {
        parent.items.splice(parent.items.indexOf(item), 1);
        row.remove();
        list.closest(".group").querySelector("[data-add-condition]").focus();
      });
      fillOperators();
      row.append(fieldSelect, opSelect, valueHolder, remove);
      return row;
    }

    function groupView(group, parent) {
      const box = element("div", { className: "group" });
      const list = element("ol", { className: "items" });
      const match = element("select", { ariaLabel: "Match" }, [option("and", GROUP_LABELS.and, group.op === "and"), option("or", GROUP_LABELS.or, group.op === "or")]);
      match.addEventListener("change", () => { group.op = match.value; });
      const head = element("div", { className: "group-head" }, [element("span", { textContent: "Match " }), match]);
      const addCondition = element("button", { type: "button", textContent: "Add condition" });
      addCondition.dataset.addCondition = "";
      const addGroup = element("button", { type: "button", textContent: "Add group" });
      addCondition.addEventListener("click", () => {
        const item = { type: "condition", field: firstField.name, op: firstField.ops[0], value: "" };
        group.items.push(item);
        const view = conditionView(item, group, list);
        list.append(view);
        view.querySelector("select").focus();
      });
      addGroup.addEventListener("click", () => {
        const item = { type: "group", op: group.op === "and" ? "or" : "and", items: [] };
        group.items.push(item);
        const view = element("li", {}, [groupView(item, group)]);
        list.append(view);
        view.querySelector("select").focus();
      });
      const tools = element("div", { className: "row group-tools" }, [addCondition, addGroup]);
      if (parent) {
        const remove = element("button", { type: "button", className: "link", textContent: "Remove group" });
        remove.addEventListener("click", () => {
          parent.items.splice(parent.items.indexOf(group), 1);
          const holder = box.parentElement;
          const parentGroup = holder.parentElement.closest(".group");
          holder.remove();
          parentGroup.querySelector("[data-add-condition]").focus();
        });
        tools.append(remove);
      }
      for (const item of group.items) {
        list.append(item.type === "group" ? element("li", {}, [groupView(item, group)]) : conditionView(item, group, list));
      }
      box.append(head, list, tools);
      return box;
    }

    let model = data.filter ? toModel(data.filter) : { type: "group", op: "and", items: [] };
    if (model.type !== "group") model = { type: "group", op: "and", items: [model] };
    root.replaceChildren(groupView(model, null));

    function apply() {
      const filter = fromModel(model);
      navigate((params) => {
        if (filter) params.set("filter", JSON.stringify(filter));
        else params.delete("filter");
      });
    }
    return { apply };
  }

  // ---- Live rows ------------------------------------------------------------------------
  function live(config) {
    const body = document.querySelector("[data-live-rows]");
    const button = document.querySelector("[data-new-requests]");
    if (!body || !button || !window.EventSource) return;
    let url = config.url;
    let held = [];
    let source = null;

    function seen(row) { return body.querySelector(`tr[data-id="${row.dataset.id}"]`); }

    function insert(rows) {
      for (const row of rows.reverse()) {
        if (seen(row)) continue;
        row.addEventListener("click", (event) => {
          if (!event.target.closest("a, button")) window.location.href = row.dataset.href;
        });
        body.prepend(row);
        Heliograph.localTimes(row);
      }
      const empty = document.querySelector("main .empty");
      if (empty) empty.remove();
    }

    function showHeld(count) {
      button.hidden = count === 0;
      button.textContent = count === 1 ? "1 new request" : `${count} new requests`;
    }

    button.addEventListener("click", () => {
      if (!config.insert) { window.location.href = button.dataset.href; return; }
      insert(held);
      held = [];
      showHeld(0);
      window.scrollTo({ top: 0 });
    });

    function open() {
      source = new EventSource(url);
      source.addEventListener("rows", (event) => {
        const data = JSON.parse(event.data);
        url = url.replace(/after=[^&]*/, "after=" + encodeURIComponent(data.cursor));
        const template = document.createElement("template");
        template.innerHTML = data.html;
        const rows = Array.from(template.content.querySelectorAll("tr")).filter((row) => !seen(row));
        const reading = window.scrollY > 40 || held.length > 0 || document.querySelector("table[data-nav] tr.current");
        if (config.insert && !reading) { insert(rows); return; }
        held = held.concat(rows);
        showHeld(held.length);
      });
      source.addEventListener("end", (event) => {
        const data = JSON.parse(event.data);
        url = url.replace(/after=[^&]*/, "after=" + encodeURIComponent(data.cursor));
        source.close();
        open();
      });
    }
    open();
    window.addEventListener("pagehide", () => { if (source) source.close(); });
  }

  // ---- Wiring ---------------------------------------------------------------------------
  function wire() {
    for (const toggle of document.querySelectorAll("[data-toggle]")) {
      const panel = document.getElementById(toggle.dataset.toggle);
      toggle.addEventListener("click", () => {
        panel.hidden = !panel.hidden;
        toggle.setAttribute("aria-expanded", String(!panel.hidden));
        if (!panel.hidden) {
          const first = panel.querySelector("select, input, button");
          if (first) first.focus();
        }
      });
    }

    const builderData = document.getElementById("builder-data");
    const builderRoot = document.querySelector("[data-builder-root]");
    if (builderData && builderRoot) {
      const builder = Builder(builderRoot, JSON.parse(builderData.textContent));
      document.querySelector("[data-builder-apply]").addEventListener("click", builder.apply);
      document.querySelector("[data-builder-clear]").addEventListener("click", () => navigate((params) => params.delete("filter")));
    }

    const picker = document.getElementById("column-picker");
    if (picker) {
      picker.addEventListener("submit", (event) => {
        event.preventDefault();
        const chosen = Array.from(picker.querySelectorAll('input[name="col"]:checked'), (box) => box.value);
        if (!chosen.length) return;
        navigate((params) => params.set("cols", chosen.join(",")));
      });
    }

    const liveData = document.getElementById("live-data");
    if (liveData) live(JSON.parse(liveData.textContent));
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
