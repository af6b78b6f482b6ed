// The store page's chart: uptime and downtime hours per local date, as bars drawn by uPlot.
// The data is in the chart element's data-chart attribute (JSON), put there by the server.
"use strict";
(function () {
  var element = document.getElementById("daily-chart");
  if (!element || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(element.dataset.chart);
  var positions = data.dates.map(function (_, i) { return i; });
  var style = getComputedStyle(document.documentElement);
  var upColour = style.getPropertyValue("--up").trim() || "#8fb8e8";
  var downColour = style.getPropertyValue("--down").trim() || "#c8352e";

  function label(i) {
    var date = data.dates[i];
    if (date === undefined) { return ""; }
    // The date is local to the store: read it as a calendar date, never as an instant.
    var parts = date.split("-").map(Number);
    var day = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2]));
    return day.toLocaleDateString(undefined, { weekday: "short", timeZone: "UTC" }) + " " + date.slice(5);
  }

  function bars(align) {
    return uPlot.paths.bars({ size: [0.4, 48], align: align, gap: 2 });
  }

  function width() { return Math.max(260, element.clientWidth); }

  var options = {
    width: width(),
    height: 280,
    scales: { x: { time: false, range: [-0.5, positions.length - 0.5] }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
    axes: [
      { splits: function () { return positions; }, values: function (u, splits) { return splits.map(label); }, gap: 4, size: 40 },
      { label: "hours", values: function (u, splits) { return splits.map(function (v) { return v.toFixed(1); }); }, size: 50 },
    ],
    series: [
      { label: "date", value: function (u, i) { return i === null ? "" : label(i); } },
      { label: "uptime (h)", fill: upColour, stroke: upColour, width: 0, paths: bars(-1), points: { show: false }, value: function (u, v) { return v === null ? "" : v.toFixed(2); } },
      { label: "downtime (h)", fill: downColour, stroke: downColour, width: 0, paths: bars(1), points: { show: false }, value: function (u, v) { return v === null ? "" : v.toFixed(2); } },
    ],
    legend: { live: true },
    cursor: { points: { show: false }, drag: { x: false, y: false } },
  };
  var chart = new uPlot(options, [positions, data.uptime, data.downtime], element);
  element.dataset.drawn = "true";
  window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 280 }); });
})();
