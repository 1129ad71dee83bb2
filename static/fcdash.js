// Countdown to the next attempt. Every element with data-countdown="<ISO
// time>" shows the time left until then. data-countdown-now is the server's
// clock when the element was rendered, so a wrong browser clock is corrected.
(function () {
  "use strict";

  function formatRemaining(milliseconds) {
    if (milliseconds <= 0) {
      return "(due now)";
    }
    const seconds = milliseconds / 1000;
    if (seconds < 60) {
      return "(in " + seconds.toFixed(1) + " s)";
    }
    const wholeSeconds = Math.floor(seconds);
    const minutes = Math.floor(wholeSeconds / 60);
    if (minutes < 60) {
      return "(in " + minutes + " min " + String(wholeSeconds % 60).padStart(2, "0") + " s)";
    }
    const hours = Math.floor(minutes / 60);
    return "(in " + hours + " h " + String(minutes % 60).padStart(2, "0") + " min)";
  }

  function clockOffset(element) {
    if (element.dataset.clockOffset === undefined) {
      const serverNow = Date.parse(element.dataset.countdownNow || "");
      const offset = Number.isNaN(serverNow) ? 0 : serverNow - Date.now();
      element.dataset.clockOffset = String(offset);
    }
    return Number(element.dataset.clockOffset);
  }

  function updateCountdowns() {
    for (const element of document.querySelectorAll("[data-countdown]")) {
      const due = Date.parse(element.dataset.countdown);
      if (Number.isNaN(due)) {
        continue;
      }
      const now = Date.now() + clockOffset(element);
      element.textContent = formatRemaining(due - now);
    }
  }

  updateCountdowns();
  window.setInterval(updateCountdowns, 200);
  document.addEventListener("htmx:afterSettle", updateCountdowns);
})();

// A checkbox with data-select-all="<form id>" ticks or clears every request
// id checkbox of that form, including those tied to it with form="<form id>".
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    const toggle = event.target;
    if (!(toggle instanceof HTMLInputElement) || !toggle.dataset.selectAll) {
      return;
    }
    const form = document.getElementById(toggle.dataset.selectAll);
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    for (const element of form.elements) {
      if (element.type === "checkbox" && element.name === "request_id") {
        element.checked = toggle.checked;
      }
    }
  });
})();

// Show a banner when an htmx request fails (for example 403 after the
// session changed in another tab), since htmx swaps nothing for 4xx and 5xx
// responses other than 409 and the page would otherwise not change.
(function () {
  "use strict";

  document.addEventListener("htmx:responseError", function (event) {
    const status = event.detail.xhr.status;
    let banner = document.getElementById("request-error");
    if (!banner) {
      banner = document.createElement("p");
      banner.id = "request-error";
      banner.className = "error";
      banner.setAttribute("role", "alert");
      document.querySelector("main").prepend(banner);
    }
    banner.textContent =
      status === 403
        ? "The server rejected this action (HTTP 403): you may have signed out " +
          "or lack the role for it. Reload the page and try again."
        : "The request failed (HTTP " + status + "). Reload the page and try again.";
  });
})();
