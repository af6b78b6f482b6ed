// The reports list, live: "Run a new report" starts one without leaving the page, and rows of
// reports still being computed poll their status until they are Complete or Failed.
"use strict";
(function () {
  var POLL_MS = 1000;
  var table = document.getElementById("reports");
  var form = document.getElementById("trigger-form");
  var message = document.getElementById("trigger-message");
  if (!table || !form) { return; }
  var body = table.tBodies[0];
  var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  function cell(row, field) { return row.querySelector('[data-field="' + field + '"]'); }

  function text(value) { return value === null || value === undefined ? "\u2014" : String(value); }

  function fill(row, report) {
    row.dataset.finished = report.finished ? "true" : "false";
    var created = cell(row, "created");
    created.textContent = "";
    var link = document.createElement("a");
    link.href = report.url;
    link.textContent = report.created;
    created.appendChild(link);
    var status = cell(row, "status");
    status.textContent = "";
    var badge = document.createElement("span");
    badge.className = "status " + report.status_class;
    badge.textContent = report.status;
    status.appendChild(badge);
    if (report.shards_total) {
      status.appendChild(document.createTextNode(" "));
      status.appendChild(window.shardProgress(report));
    }
    if (report.error) {
      var error = document.createElement("span");
      error.className = "error-text";
      error.textContent = " " + report.error;
      status.appendChild(error);
    }
    cell(row, "now").textContent = report.now;
    cell(row, "duration").textContent = report.duration;
    cell(row, "stores").textContent = text(report.stores);
    cell(row, "incidents").textContent = text(report.incidents);
  }

  function newRow(report) {
    var row = document.createElement("tr");
    row.dataset.reportId = report.report_id;
    row.dataset.statusUrl = report.status_url;
    ["created", "status", "now", "duration", "stores", "incidents"].forEach(function (field, i) {
      var td = document.createElement("td");
      td.dataset.field = field;
      if (i >= 3) { td.className = "num"; }
      row.appendChild(td);
    });
    fill(row, report);
    var empty = body.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    body.insertBefore(row, body.firstChild);
    return row;
  }

  function poll(row) {
    if (row.dataset.finished === "true" || row.dataset.polling === "true") { return; }
    row.dataset.polling = "true";
    function step() {
      fetch(row.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) {
            message.textContent = "Your session has ended: reload the page to sign in again.";
            return null;
          }
          if (!response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (report) {
          if (report === null) { row.dataset.polling = "false"; return; }
          fill(row, report);
          if (report.finished) {
            row.dataset.polling = "false";
            message.textContent = "Report " + report.status.toLowerCase() + ".";
          } else {
            window.setTimeout(step, POLL_MS);
          }
        })
        .catch(function () { window.setTimeout(step, POLL_MS * 3); });
    }
    step();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    message.textContent = "Starting a report\u2026";
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": token },
    })
      .then(function (response) {
        if (response.ok) { return response.json(); }
        var failed = new Error("the service answered " + response.status);
        // The service's JSON errors say why (a 429 says when to try again).
        return response.json().then(
          function (answer) { throw new Error(answer.error ? answer.error.message : failed.message); },
          function () { throw failed; }
        );
      })
      .then(function (report) {
        message.textContent = "Report started; computing\u2026";
        poll(newRow(report));
      })
      .catch(function (error) {
        message.textContent = "Could not start a report: " + error.message + ". Reload the page and try again.";
      })
      .finally(function () { button.disabled = false; });
  });

  Array.prototype.forEach.call(body.querySelectorAll("tr[data-report-id]"), poll);
})();
