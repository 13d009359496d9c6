// The compare page's curves (SVG in <object>): click a legend entry to hide or show its group,
// drag across the plot to zoom to an epoch range, "reset zoom" to see every epoch. The chart
// marks its groups (g.series / g.legend-entry with data-series) and its plot area's data and
// pixel x range (rect.plot-area data-x0/x1/px0/px1); no framework.
(function () {
  "use strict";

  function hidden(obj) {
    return (obj.dataset.hidden || "").split(",").filter(function (s) { return s !== ""; });
  }

  function apply(obj, doc) {
    var off = hidden(obj);
    doc.querySelectorAll("g.series").forEach(function (g) {
      g.style.display = off.indexOf(g.dataset.series) >= 0 ? "none" : "";
    });
    doc.querySelectorAll("g.legend-entry").forEach(function (g) {
      g.style.opacity = off.indexOf(g.dataset.series) >= 0 ? "0.35" : "";
    });
  }

  function toggle(obj, doc, i) {
    var off = hidden(obj);
    var at = off.indexOf(i);
    if (at >= 0) { off.splice(at, 1); } else { off.push(i); }
    obj.dataset.hidden = off.join(",");
    apply(obj, doc);
  }

  // The epoch under pixel x of the plot area.
  function epochAt(area, x) {
    var x0 = +area.dataset.x0, x1 = +area.dataset.x1, p0 = +area.dataset.px0, p1 = +area.dataset.px1;
    return x0 + (x1 - x0) * (x - p0) / Math.max(1, p1 - p0);
  }

  function zoom(obj, from, to) {
    var base = obj.dataset.base || obj.getAttribute("data");
    obj.dataset.base = base;
    obj.setAttribute("data", from === null ? base : base + "&from=" + from + "&to=" + to);
  }

  function wire(obj) {
    var doc = obj.contentDocument;
    if (!doc || !doc.querySelector("g.legend-entry")) { return; }
    apply(obj, doc);
    doc.querySelectorAll("g.legend-entry").forEach(function (g) {
      g.addEventListener("click", function () { toggle(obj, doc, g.dataset.series); });
    });
    var area = doc.querySelector("rect.plot-area");
    if (!area) { return; }
    var start = null;
    area.addEventListener("mousedown", function (e) { start = e.offsetX; e.preventDefault(); });
    doc.addEventListener("mouseup", function (e) {
      if (start === null) { return; }
      var a = epochAt(area, Math.min(start, e.offsetX)), b = epochAt(area, Math.max(start, e.offsetX));
      start = null;
      if (Math.ceil(a) < Math.floor(b)) { zoom(obj, Math.ceil(a), Math.floor(b)); }
    });
  }

  document.querySelectorAll("object.chart[data-compare]").forEach(function (obj) {
    obj.addEventListener("load", function () { wire(obj); });
    wire(obj);
    var reset = document.querySelector('button.reset-zoom[data-for="' + obj.id + '"]');
    if (reset) { reset.addEventListener("click", function () { zoom(obj, null); }); }
  });
})();
