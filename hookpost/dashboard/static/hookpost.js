// Charts (uPlot) from the JSON the server renders in data-json attributes (htmx drops
// <script> elements from swapped content, JSON ones too), re-drawn after each htmx swap;
// the alert-rule form's kinds; confirmation of destructive forms. No inline script anywhere
// (strict CSP).
(function () {
  "use strict";
  var COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7c3aed"];

  function draw(figure) {
    var source = document.getElementById(figure.dataset.chart);
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.dataset.json);
    var names = figure.dataset.series.split(",");
    var labels = figure.dataset.labels.split(",");
    var series = [{}];
    var columns = [data.t];
    names.forEach(function (name, i) {
      var line = { label: labels[i] || name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false };
      // data-dots: mark every value (a lone value between gaps draws no line).
      if (figure.dataset.dots) line.points = { show: true, size: 7, fill: COLORS[i % COLORS.length] };
      series.push(line);
      columns.push(data[name]);
    });
    var old = figure.querySelector(".uplot");
    if (old) old.remove();
    var width = Math.max(280, figure.clientWidth - 16);
    var options = { title: figure.dataset.title, width: width, height: 200, series: series };
    if (figure.dataset.range) {
      var range = figure.dataset.range.split(",").map(Number);
      options.scales = { y: { range: range } };
    }
    new uPlot(options, columns, figure);
    figure.dataset.rendered = "true";
    figure.dataset.points = String(columns.slice(1).reduce(function (sum, col) {
      return sum + col.reduce(function (s, v) { return s + (v || 0); }, 0);
    }, 0));
  }

  function drawAll(root) {
    (root || document).querySelectorAll("figure[data-chart]").forEach(draw);
  }

  // The alert-rule form shows the fieldsets of the chosen kind only; the others are disabled
  // too, so their fields are not sent (without script every fieldset shows, blanks are ignored).
  function kinds(root) {
    (root || document).querySelectorAll("form.alert-form").forEach(function (form) {
      var select = form.querySelector("select[name=kind]");
      if (!select) return;
      function apply() {
        form.querySelectorAll("fieldset[data-kinds]").forEach(function (fieldset) {
          var on = fieldset.dataset.kinds.split(" ").indexOf(select.value) >= 0;
          fieldset.hidden = !on;
          fieldset.disabled = !on;
        });
      }
      select.addEventListener("change", apply);
      apply();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); kinds(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
  document.addEventListener("submit", function (event) {
    if (event.target.hasAttribute("hx-post")) return; // htmx:confirm asks for those
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (!form) return;
    event.preventDefault();
    if (window.confirm(form.dataset.confirm)) event.detail.issueRequest(true);
  });
})();
