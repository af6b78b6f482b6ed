// A report page opened while its report is computed: poll its status, then show the stores.
"use strict";
(function () {
  var waiting = document.getElementById("report-waiting");
  if (!waiting) { return; }
  var POLL_MS = 1000;
  function step() {
    fetch(waiting.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (report) {
        if (report.finished) { window.location.reload(); } else { window.setTimeout(step, POLL_MS); }
      })
      .catch(function () { window.setTimeout(step, POLL_MS * 3); });
  }
  window.setTimeout(step, POLL_MS);
})();
