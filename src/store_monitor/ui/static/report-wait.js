// A report page opened while its report is computed: poll its status, then show the stores.
"use strict";
(function () {
  var waiting = document.getElementById("report-waiting");
  if (!waiting) { return; }
  var POLL_MS = 1000;
  // A report computed in shards: keep its bar and "2 of 4 shards" up to date.
  function showProgress(report) {
    if (!report.shards_total) { return; }
    var wrap = waiting.querySelector(".progress");
    if (!wrap) {
      wrap = document.createElement("span");
      wrap.className = "progress";
      wrap.appendChild(document.createElement("progress"));
      wrap.appendChild(document.createTextNode(" "));
      var words = document.createElement("span");
      words.className = "progress-text";
      wrap.appendChild(words);
      waiting.appendChild(document.createTextNode(" "));
      waiting.appendChild(wrap);
    }
    var bar = wrap.querySelector("progress");
    bar.max = report.shards_total;
    bar.value = report.shards_done;
    wrap.querySelector(".progress-text").textContent =
      report.shards_done + " of " + report.shards_total + " shards";
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
