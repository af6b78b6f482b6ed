// The store page's charts, as bars drawn by uPlot. Each chart element's data-chart attribute
// (JSON, put there by the server) holds {"labels": [...], "series": [{"name", "colour",
// "values"}]}; data-label-space is the room, in CSS pixels, one x label needs.
"use strict";
(function () {
  if (typeof uPlot === "undefined") { return; }
  var HEIGHT = 240;
  var style = getComputedStyle(document.documentElement);

  function colour(name) { return style.getPropertyValue("--" + name).trim(); }

  function hours(u, splits) { return splits.map(function (v) { return v.toFixed(1); }); }

  function draw(element) {
    var data = JSON.parse(element.dataset.chart);
    var positions = data.labels.map(function (_, i) { return i; });
    var paired = data.series.length > 1;
    var series = [{}].concat(data.series.map(function (one, index) {
      var fill = colour(one.colour);
      return {
        label: one.name, fill: fill, stroke: fill, width: 0, points: { show: false },
        // Side by side when there are two, centred when one.
        paths: uPlot.paths.bars({ size: [paired ? 0.4 : 0.6, 48], align: paired ? (index === 0 ? -1 : 1) : 0, gap: 2 }),
      };
    }));
    function width() { return Math.max(200, element.clientWidth); }
    var options = {
      width: width(),
      height: HEIGHT,
      scales: {
        x: { time: false, range: [-0.5, Math.max(0, positions.length - 1) + 0.5] },
        y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } },
      },
      axes: [
        {
          // Whole steps, as far apart as a label is wide: on a phone every other day is named.
          space: Number(element.dataset.labelSpace) || 80,
          incrs: [1, 2, 3, 4, 5, 6, 7, 10, 14, 20, 50],
          values: function (u, splits) { return splits.map(function (v) { return data.labels[v] || ""; }); },
          gap: 4,
          size: 32,
        },
        { label: "hours", values: hours, size: 50 },
      ],
      series: series,
      // The legend is the page's own (static, in the figure's caption): uPlot's live one shows
      // empty values until the pointer is over the chart.
      legend: { show: false },
      cursor: { show: false },
    };
    var values = [positions].concat(data.series.map(function (one) { return one.values; }));
    var chart = new uPlot(options, values, element);
    element.uplot = chart;
    element.dataset.drawn = "true";
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: HEIGHT }); });
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
})();
