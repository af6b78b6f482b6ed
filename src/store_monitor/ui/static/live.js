// The "Down now" page: poll the live view and redraw the table, so it stays current while open.
"use strict";
(function () {
  var table = document.getElementById("live");
  if (!table) { return; }
  var POLL_MS = 2000;
  var body = table.tBodies[0];

  function cell(row, text, className) {
    var td = row.insertCell();
    td.textContent = text;
    if (className) { td.className = className; }
    return td;
  }

  function draw(view) {
    document.getElementById("live-now").textContent = view.now;
    document.getElementById("live-total").textContent = String(view.total);
    var rows = document.createDocumentFragment();
    view.stores.forEach(function (store) {
      var row = document.createElement("tr");
      row.dataset.storeId = store.store_id;
      var name = row.insertCell();
      if (store.url) {
        var link = document.createElement("a");
        link.href = store.url;
        link.textContent = store.store_id;
        name.appendChild(link);
      } else {
        name.textContent = store.store_id;
      }
      cell(row, store.since_local);
      cell(row, store.since_utc);
      cell(row, store.duration, "num");
      rows.appendChild(row);
    });
    if (!view.stores.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "No store is down now.").colSpan = 4;
      rows.appendChild(empty);
    }
    body.replaceChildren(rows);
  }

  function step() {
    fetch(table.dataset.jsonUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (view) { draw(view); window.setTimeout(step, POLL_MS); })
      .catch(function () { window.setTimeout(step, POLL_MS * 3); });
  }
  window.setTimeout(step, POLL_MS);
})();
