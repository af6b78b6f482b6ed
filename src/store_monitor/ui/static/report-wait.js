// A report page opened while its report is computed: poll its status, then show the stores.
"use strict";
(function () {
  var waiting = document.getElementById("report-waiting");
  if (!waiting) { return; }
  var POLL_MS = 1000;
  // A report computed in shards: keep its bar and "2 of 4 shards" up to date.
  function showProgress(report) {
    if (!report.shards_total) { return; }
    var shown = waiting.querySelector(".progress");
    var fresh = window.shardProgress(report);
    if (shown) {
      shown.replaceWith(fresh);
    } else {
      waiting.appendChild(document.createTextNode(" "));
      waiting.appendChild(fresh);
    }
  }
  function step() {
    fetch(waiting.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (report) {
        if (report.finished) { window.location.reload(); return; }
        showProgress(report);
        window.setTimeout(step, POLL_MS);
      })
      .catch(function () { window.setTimeout(step, POLL_MS * 3); });
  }
  window.setTimeout(step, POLL_MS);
})();
