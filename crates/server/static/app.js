// fairtat dashboard client: live run pages and a live runs list over Server-Sent Events.
// No framework, no CDN. The server renders everything; this file only re-fetches fragments.
(function () {
  "use strict";

  // Seconds as "42s", "3m 07s" or "1h 02m" ("–" when unknown): the runs list's ETA column and,
  // through window.fairtatDuration, run.js's epoch ETA.
  function duration(s) {
    if (s == null || !isFinite(s) || s < 0) { return "–"; }
    s = Math.round(s);
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m " + ("0" + (s % 60)).slice(-2) + "s"; }
    return Math.floor(s / 3600) + "h " + ("0" + Math.floor(s / 60) % 60).slice(-2) + "m";
  }
  window.fairtatDuration = duration;

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
        if (window.fairtatRun) { window.fairtatRun.charts(m); } // run.js: charts new to this run
        // Charts are <object>s (an <img> would hide their hover titles); a new `data` reloads one.
        document.querySelectorAll("object.chart[data-chart]").forEach(function (img) {
          var name = img.getAttribute("data-chart");
          var q = "";
          if ((name === "cfps" || name.indexOf("confusion") === 0) && epochQ) { q += epochQ; }
          if (name === "cfps" && srcSel && srcSel.value !== "train") { q += "&source=" + srcSel.value; }
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
    var srcSel = document.getElementById("cfps-source");
    if (srcSel) { srcSel.addEventListener("change", function () { schedule(); }); }
    if (slider) {
      slider.addEventListener("input", function () {
        follow = slider.value === slider.max;
        if (sliderOut) { sliderOut.textContent = slider.value; }
        schedule();
      });
    }

    // The header, downloads, evaluations and log come from one server-rendered JSON object:
    // fetched on the run's events (throttled), and every 2 s while an evaluation is active.
    var liveTimer = null, liveBusy = false, livePending = false, lastEvals = null, evalPoll = null;
    function liveRefresh() {
      liveTimer = null;
      if (liveBusy) { livePending = true; return; }
      liveBusy = true;
      fetch("/runs/" + id + "/live").then(function (r) { return r.json(); }).then(function (v) {
        var head = document.getElementById("run-head");
        if (head && head.innerHTML !== v.head) { head.innerHTML = v.head; }
        var files = document.getElementById("files");
        if (files && files.innerHTML !== v.files) { files.innerHTML = v.files; }
        // Replace the evaluations only when they changed, so a half-filled form survives.
        if (v.evals !== lastEvals) {
          var sec = document.getElementById("evals");
          var active = document.activeElement;
          if (sec && !(active && sec.contains(active) && active.tagName === "SELECT")) {
            var h = sec.querySelector("h2");
            sec.innerHTML = (h ? h.outerHTML : "") + v.evals;
            lastEvals = v.evals;
          }
        }
        var log = document.getElementById("log");
        if (log && log.textContent !== v.log) { log.textContent = v.log; }
        root.setAttribute("data-status", v.status);
        // The trainer stopped but its job has not left the queue yet: ask again (Resume comes).
        if (v.controls && v.controls.ending) { setTimeout(liveSoon, 1000); }
        if (v.evals_active && !evalPoll) {
          evalPoll = setInterval(liveSoon, 2000);
        } else if (!v.evals_active && evalPoll) {
          clearInterval(evalPoll); evalPoll = null;
        }
      }).catch(function () {}).then(function () {
        liveBusy = false;
        if (livePending) { livePending = false; liveSoon(); }
      });
    }
    function liveSoon() { if (!liveTimer) { liveTimer = setTimeout(liveRefresh, 300); } }

    // The page was rendered from the events up to data-after: the stream starts after them.
    var after = root.getAttribute("data-after");
    var es = new EventSource("/api/runs/" + id + "/events" + (after ? "?after=" + after : ""));
    es.onmessage = function (m) {
      var line;
      try { line = JSON.parse(m.data); } catch (e) { return; }
      if (window.fairtatRun) { window.fairtatRun.line(line); } // run.js: the step panel
      if (line.type === "epoch" && slider) {
        slider.max = line.epoch;
        if (follow) { slider.value = line.epoch; if (sliderOut) { sliderOut.textContent = line.epoch; } }
        schedule();
      } else if (line.type === "finished") {
        schedule();
      }
      if (line.type !== "progress") { liveSoon(); }
    };
    es.addEventListener("status", liveSoon);
    es.addEventListener("resync", function () { schedule(); liveSoon(); });
    es.addEventListener("end", function () {
      // The run is over: charts and the header catch up once; the page never reloads itself.
      es.close();
      schedule();
      liveSoon();
    });
    var evalsBody = document.getElementById("evals-body");
    if (evalsBody && evalsBody.getAttribute("data-active") === "1") { evalPoll = setInterval(liveSoon, 2000); }
  }

  // Runs page: one stream of every run's changes. A change to a row on the page updates its
  // cells in place; a run the table does not show yet (a new run) or a missed stretch (resync,
  // reconnect) re-fetches the rows for the page's own filters and sort, keeping ticked boxes.
  function runsPage() {
    var timer = null;
    function rows() {
      timer = null;
      fetch("/fragments/run-rows" + window.location.search).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        var body = document.querySelector("#runs-table tbody");
        if (html === null || !body || body.innerHTML === html) { return; }
        var ticked = {};
        body.querySelectorAll("input[name=ids]:checked").forEach(function (c) { ticked[c.value] = true; });
        body.innerHTML = html;
        body.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = !!ticked[c.value]; });
        var empty = document.getElementById("runs-empty");
        if (empty) { empty.style.display = body.querySelector("tr") ? "none" : ""; }
      }).catch(function () {});
    }
    function soon() { if (!timer) { timer = setTimeout(rows, 1000); } }
    function pct(h, key) { return h && isFinite(h[key]) ? (100 * h[key]).toFixed(2) : "–"; }
    function set(row, field, text) {
      var c = row.querySelector('[data-field="' + field + '"]');
      if (c && c.textContent !== text) { c.textContent = text; }
      return c;
    }
    function update(m) {
      var s;
      try { s = JSON.parse(m.data); } catch (e) { return; }
      var row = document.querySelector('#runs-table tr[data-run="' + s.id + '"]');
      if (!row) { soon(); return; }
      var only = new URLSearchParams(window.location.search).get("status");
      if (only && only !== s.status) { soon(); }
      var st = set(row, "status", s.status);
      if (st) { st.className = "status status-" + s.status; st.title = s.message || ""; }
      var p = row.querySelector('[data-field="progress"] progress');
      if (p) { p.value = Math.round(100 * Math.min(1, Math.max(0, s.progress || 0))); }
      set(row, "epochs", s.epochs_done + "/" + s.epochs_total);
      var live = s.status === "running" || s.status === "queued";
      set(row, "eta", live ? duration(s.eta_secs) : "–");
      var worst = s.dataset === "cifar100" ? "worst10" : "worst";
      set(row, "clean", pct(s.clean, "overall"));
      set(row, "clean-worst", pct(s.clean, worst));
      set(row, "robust", pct(s.robust, "overall"));
      set(row, "robust-worst", pct(s.robust, worst));
    }
    var es = new EventSource("/api/events");
    es.addEventListener("status", update);
    es.addEventListener("resync", soon);
    // (Re)connected: anything may have changed while the stream was down.
    es.addEventListener("hello", soon);
  }

  // New-run form: fold away the method fields the chosen method does not read (they are still
  // submitted, with their values); a button shows them again.
  function newRunPage() {
    var method = document.querySelector('#new-run-form [name="method.name"]');
    var note = document.getElementById("method-fields-note");
    var label = document.getElementById("method-fields-hidden");
    var toggle = document.getElementById("method-fields-toggle");
    if (!method || !note) { return; }
    var shown = false;
    function apply() {
      var n = 0;
      document.querySelectorAll("#new-run-form .field[data-methods]").forEach(function (f) {
        var other = f.getAttribute("data-methods").split(" ").indexOf(method.value) < 0
          && !f.classList.contains("invalid");
        f.classList.toggle("other-method", other);
        f.classList.toggle("shown", other && shown);
        if (other) { n += 1; }
      });
      note.hidden = n === 0;
      label.textContent = n + " field(s) of other methods " + (shown ? "shown, greyed." : "hidden.");
      toggle.textContent = shown ? "hide them" : "show them";
    }
    method.addEventListener("change", apply);
    toggle.addEventListener("click", function () { shown = !shown; apply(); });
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var run = document.getElementById("run");
    if (run) { runPage(run); }
    if (document.body.getAttribute("data-page") === "runs") { runsPage(); }
    if (document.body.getAttribute("data-page") === "new") { newRunPage(); }
  });
})();
