// The request page: feedback (thumbs up or down) and scores, saved through the REST API; the
// page reloads after a score so that it shows what the server kept.
"use strict";

(() => {
  function wireFeedback(card, requestId) {
    const status = card.querySelector("[data-feedback-status]");
    for (const button of card.querySelectorAll("[data-feedback]")) {
      button.addEventListener("click", async () => {
        const rating = button.dataset.feedback === "true";
        const result = await Heliograph.api("POST", `/v1/request/${encodeURIComponent(requestId)}/feedback`, { rating });
        if (!result.ok) { status.textContent = `Not saved: ${result.error}`; return; }
        for (const other of card.querySelectorAll("[data-feedback]")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        status.textContent = rating ? "Rated good." : "Rated bad.";
      });
    }
  }

  function wireScores(card, requestId) {
    const form = card.querySelector("[data-score-form]");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      Heliograph.showError(form, "");
      const name = form.elements.name.value.trim();
      const value = Number(form.elements.value.value);
      if (!name || !Number.isFinite(value)) { Heliograph.showError(form, "A score needs a name and a number."); return; }
      const path = `/v1/request/${encodeURIComponent(requestId)}/score`;
      const result = await Heliograph.api("POST", path, { scores: { [name]: value } });
      if (!result.ok) { Heliograph.showError(form, result.error); return; }
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const card = document.querySelector("[data-annotations]");
    if (!card) return;
    wireFeedback(card, card.dataset.annotations);
    wireScores(card, card.dataset.annotations);
  });
})();
