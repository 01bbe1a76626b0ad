// A session's page: saves its tag and feedback through the REST API, then says so.
"use strict";

(() => {
  function wire() {
    const section = document.querySelector("[data-session]");
    if (!section) return;
    const base = `/v1/session/${encodeURIComponent(section.dataset.session)}`;
    const saved = section.querySelector("[data-saved]");

    const tagForm = section.querySelector("[data-session-tag]");
    if (!tagForm) return;  // a viewer's page shows the tag and feedback without forms
    tagForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      Heliograph.showError(tagForm, "");
      saved.textContent = "";
      const result = await Heliograph.api("POST", `${base}/tag`, { tag: tagForm.elements.tag.value });
      if (!result.ok) { Heliograph.showError(tagForm, result.error); return; }
      saved.textContent = "Tag saved.";
    });

    const feedbackForm = section.querySelector("[data-session-feedback]");
    for (const button of feedbackForm.querySelectorAll("button[data-rating]")) {
      button.addEventListener("click", async () => {
        Heliograph.showError(feedbackForm, "");
        saved.textContent = "";
        const rating = button.dataset.rating === "true";
        const result = await Heliograph.api("POST", `${base}/feedback`, { rating });
        if (!result.ok) { Heliograph.showError(feedbackForm, result.error); return; }
        for (const other of feedbackForm.querySelectorAll("button[data-rating]")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        saved.textContent = "Feedback saved.";
      });
    }
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
