// fairtat run page, inside an epoch: the step panel (batch i of n, step loss, throughput, the
// epoch's ETA and the step-loss curve of the epoch so far) from the trainer's `progress` lines,
// and figures for charts a run gains while it trains (EMA/FAWA, validation, method state).
// app.js owns the event stream and calls the two hooks below, and formats durations
// (window.fairtatDuration); no framework, no CDN.
(function () {
  "use strict";

  var panel = null, bar = null, text = null, chart = null;
  // The folded state of store::step: the latest line and the curve of its epoch.
  var step = null;

  function num(x, digits) { return x == null || !isFinite(x) ? "–" : Number(x).toFixed(digits); }

  // The step-loss curve as one polyline over batches 0..n, y scaled to the epoch's range.
  function draw() {
    var pts = step.points || [];
    if (!chart) { return; }
    if (pts.length === 0) { chart.innerHTML = ""; return; }
    var ys = pts.map(function (p) { return p[1]; });
    var lo = Math.min.apply(null, ys), hi = Math.max.apply(null, ys);
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    var n = Math.max(step.batches, 1);
    var coords = pts.map(function (p) {
      var x = 600 * p[0] / n, y = 76 - 72 * (p[1] - lo) / (hi - lo);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    if (coords.length === 1) { coords.push(coords[0]); }
    chart.innerHTML = '<polyline points="' + coords.join(" ") + '"></polyline>';
    var range = "step loss within epoch " + step.epoch + " (batch 0 to " + n + "), " +
      num(Math.min.apply(null, ys), 4) + " to " + num(Math.max.apply(null, ys), 4);
    chart.setAttribute("aria-label", range);
    var caption = document.getElementById("step-range");
    if (caption) { caption.textContent = range; }
  }

  function render() {
    if (!panel || !step || !step.batches) { return; }
    bar.max = step.batches;
    bar.value = step.batch;
    var pct = Math.round(100 * step.batch / step.batches);
    text.textContent = step.closed
      ? "epoch " + step.epoch + ": all " + step.batches + " batches trained; evaluating"
      : "epoch " + step.epoch + " · batch " + step.batch + " of " + step.batches + " (" + pct + "%)" +
        " · step loss " + num(step.step_loss, 4) + " (epoch mean " + num(step.loss, 4) + ")" +
        " · " + num(step.images_per_sec, 0) + " img/s · epoch ETA " + window.fairtatDuration(step.epoch_eta_secs);
    draw();
  }

  // Fold one event line as the server's store::step does.
  function line(l) {
    if (l.type === "progress") {
      var fresh = !step || l.epoch !== step.epoch || l.batch < step.batch || step.closed;
      if (!step) { step = {}; }
      if (fresh) { step.points = []; step.closed = false; }
      step.epoch = l.epoch; step.batch = l.batch; step.batches = l.batches;
      step.loss = l.loss;
      step.step_loss = l.step_loss != null ? l.step_loss : l.loss;
      step.images_per_sec = l.images_per_sec;
      step.epoch_eta_secs = l.epoch_eta_secs;
      if (step.step_loss != null && isFinite(step.step_loss)) {
        step.points.push([l.batch, step.step_loss]);
        if (step.points.length > 400) { step.points = step.points.filter(function (_, i) { return i % 2 === 0; }); }
      }
      render();
    } else if (l.type === "epoch" && step && l.epoch === step.epoch) {
      step.closed = true;
      render();
    }
  }

  // Add a figure for each chart the manifest lists that the page lacks; app.js sets its URL
  // right after this hook, as for every chart.
  function charts(m) {
    var section = document.querySelector("section.charts");
    if (!section || !m || !m.charts) { return; }
    Object.keys(m.charts).forEach(function (name) {
      if (section.querySelector('object.chart[data-chart="' + name + '"]')) { return; }
      var fig = document.createElement("figure");
      var obj = document.createElement("object");
      obj.className = "chart";
      obj.type = "image/svg+xml";
      obj.setAttribute("data-chart", name);
      obj.setAttribute("data-v", "new");
      obj.setAttribute("aria-label", name + " chart");
      obj.textContent = name + " chart";
      fig.appendChild(obj);
      section.appendChild(fig);
    });
  }

  window.fairtatRun = { line: line, charts: charts };

  document.addEventListener("DOMContentLoaded", function () {
    panel = document.getElementById("run-step");
    if (!panel) { return; }
    bar = document.getElementById("step-bar");
    text = document.getElementById("step-text");
    chart = document.getElementById("step-chart");
    var init = panel.getAttribute("data-step");
    if (init) {
      try { step = JSON.parse(init); } catch (e) { step = null; }
    }
    render();
  });
})();
