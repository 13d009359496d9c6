// fairtat dashboard client: live run pages over Server-Sent Events, a refreshing runs list.
// No framework, no CDN. The server renders everything; this file only re-fetches fragments.
(function () {
  "use strict";

  // Run page: listen to the run's event stream; on an epoch (or status) change re-fetch the
  // chart images and the tables fragment, debounced so a snapshot replay costs one refresh.
  function runPage(root) {
    var id = root.getAttribute("data-run");
    var slider = document.getElementById("epoch-slider");
    var sliderOut = document.getElementById("epoch-value");
    var follow = true; // the slider follows the latest epoch until the user moves it
    var timer = null;

    var classSel = document.getElementById("class-select");
    var perClass = function (name) {
      return name.indexOf("class-") === 0 || name === "targets" || name.indexOf("state-") === 0;
    };

    // Ask the server for every chart's data version and re-fetch only the charts whose version
    // (or whose parameters) changed: an epoch usually leaves the per-epoch charts of a chosen
    // epoch, and charts of series a method does not record, as they are.
    function refresh() {
      timer = null;
      var epochQ = slider && !follow ? "&epoch=" + slider.value : "";
      var classQ = classSel && classSel.value !== "worst5" ? "&classes=" + classSel.value : "";
      fetch("/runs/" + id + "/charts.json?x=1" + epochQ + classQ).then(function (r) { return r.json(); }).then(function (m) {
        // Charts are <object>s (an <img> would hide their hover titles); a new `data` reloads one.
        document.querySelectorAll("object.chart[data-chart]").forEach(function (img) {
          var name = img.getAttribute("data-chart");
          var q = "";
          if ((name === "cfps" || name.indexOf("confusion") === 0) && epochQ) { q += epochQ; }
          if (perClass(name)) { q += classQ; }
          var v = m.charts && m.charts[name] !== undefined ? String(m.charts[name]) : String(Date.now());
          if (img.getAttribute("data-v") === v && (img.getAttribute("data-q") || "") === q) { return; }
          img.setAttribute("data-v", v);
          img.setAttribute("data-q", q);
          img.setAttribute("data", "/runs/" + id + "/charts/" + name + ".svg?v=" + v + q);
        });
      }).catch(function () {});
      var tq = slider && !follow ? "?epoch=" + slider.value : "";
      fetch("/runs/" + id + "/tables" + tq).then(function (r) { return r.text(); }).then(function (html) {
        document.getElementById("tables").innerHTML = html;
      }).catch(function () {});
    }
    function schedule() { if (!timer) { timer = setTimeout(refresh, 150); } }

    if (classSel) { classSel.addEventListener("change", function () { schedule(); }); }
    if (slider) {
      slider.addEventListener("input", function () {
        follow = slider.value === slider.max;
        if (sliderOut) { sliderOut.textContent = slider.value; }
        schedule();
      });
    }

    function setText(elId, text) { var e = document.getElementById(elId); if (e) { e.textContent = text; } }
    function pct(h, key) { return h && isFinite(h[key]) ? (100 * h[key]).toFixed(2) : "–"; }

    // The page was rendered from the events up to data-after: the stream starts after them.
    var after = root.getAttribute("data-after");
    var es = new EventSource("/api/runs/" + id + "/events" + (after ? "?after=" + after : ""));
    es.onmessage = function (m) {
      var line;
      try { line = JSON.parse(m.data); } catch (e) { return; }
      if (line.type === "epoch" && slider) {
        slider.max = line.epoch;
        if (follow) { slider.value = line.epoch; if (sliderOut) { sliderOut.textContent = line.epoch; } }
        schedule();
      } else if (line.type === "log") {
        var log = document.getElementById("log");
        if (log) { log.textContent += "\n[" + line.level + "] " + line.message; }
      } else if (line.type === "finished") {
        schedule();
      }
    };
    es.addEventListener("status", function (m) {
      var s;
      try { s = JSON.parse(m.data); } catch (e) { return; }
      var st = document.getElementById("run-status");
      if (st) { st.textContent = s.status; st.className = "status status-" + s.status; }
      var p = document.querySelector("#run-progress progress");
      if (p) { p.value = Math.round(100 * (s.progress || 0)); }
      setText("clean-overall", pct(s.clean, "overall"));
      setText("clean-worst", pct(s.clean, s.dataset === "cifar100" ? "worst10" : "worst"));
      setText("robust-overall", pct(s.robust, "overall"));
      setText("robust-worst", pct(s.robust, s.dataset === "cifar100" ? "worst10" : "worst"));
    });
    es.addEventListener("resync", schedule);

    // Evaluation jobs outlive the run's event stream: poll their fragment while one is active.
    function pollEvals() {
      var body = document.getElementById("evals-body");
      if (!body || body.getAttribute("data-active") !== "1") { return; }
      setTimeout(function () {
        fetch("/runs/" + id + "/evals").then(function (r) { return r.text(); }).then(function (html) {
          var sec = document.getElementById("evals");
          var h = sec.querySelector("h2");
          sec.innerHTML = (h ? h.outerHTML : "") + html;
          pollEvals();
        }).catch(function () {});
      }, 2000);
    }
    pollEvals();
    // Whether the run was queued or running when the page was rendered.
    var live = root.getAttribute("data-live") === "1";
    es.addEventListener("end", function () {
      es.close();
      schedule();
      // Buttons and downloads depend on the final state: reload once when a run seen live is
      // over. A finished run's stream ends right after its replay; reloading then would loop.
      if (live) { setTimeout(function () { window.location.reload(); }, 1500); }
    });
  }

  // Runs page: refresh status, progress and ETA cells every 3 s from the JSON API.
  function runsPage() {
    function eta(s) {
      if (s == null || !isFinite(s)) { return "–"; }
      s = Math.round(s);
      if (s < 60) { return s + "s"; }
      if (s < 3600) { return Math.floor(s / 60) + "m " + ("0" + (s % 60)).slice(-2) + "s"; }
      return Math.floor(s / 3600) + "h " + ("0" + Math.floor(s / 60) % 60).slice(-2) + "m";
    }
    setInterval(function () {
      fetch("/api/runs").then(function (r) { return r.json(); }).then(function (runs) {
        runs.forEach(function (s) {
          var row = document.querySelector('tr[data-run="' + s.id + '"]');
          if (!row) { return; }
          var st = row.querySelector('[data-field="status"]');
          if (st) { st.textContent = s.status; st.className = "status status-" + s.status; }
          var p = row.querySelector('[data-field="progress"] progress');
          if (p) { p.value = Math.round(100 * (s.progress || 0)); }
          var e = row.querySelector('[data-field="eta"]');
          if (e) { e.textContent = ["running", "queued"].indexOf(s.status) >= 0 ? eta(s.eta_secs) : "–"; }
        });
      }).catch(function () {});
    }, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var run = document.getElementById("run");
    if (run) { runPage(run); }
    if (document.body.getAttribute("data-page") === "runs") { runsPage(); }
  });
})();
