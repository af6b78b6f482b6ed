// A report computed in shards: its bar and "2 of 4 shards", as templates/progress.html renders
// them; shared by the list's and the report page's scripts.
"use strict";
window.shardProgress = function (report) {
  var wrap = document.createElement("span");
  wrap.className = "progress";
  var bar = document.createElement("progress");
  bar.max = report.shards_total;
  bar.value = report.shards_done;
  var words = document.createElement("span");
  words.className = "progress-text";
  words.textContent = report.shards_done + " of " + report.shards_total + " shards";
  wrap.appendChild(bar);
  wrap.appendChild(document.createTextNode(" "));
  wrap.appendChild(words);
  return wrap;
};
