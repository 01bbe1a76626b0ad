// Properties page: hide and restore a key through the REST API, then show the page again.
"use strict";

(() => {
  async function act(button) {
    const box = document.querySelector(".explore-side");
    button.disabled = true;
    const action = button.dataset.propertyAction;
    const result = await Heliograph.api("POST", `/v1/property/${action}`, { key: button.dataset.key });
    if (!result.ok) {
      button.disabled = false;
      Heliograph.showError(box, result.error);
      return;
    }
    window.location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("[data-property-action]")) {
      button.addEventListener("click", () => act(button));
    }
  });
})();
