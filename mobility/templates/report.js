(function () {
  "use strict";
  function val(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null) return {num: false, v: cell.textContent.trim()};
    var x = parseFloat(v);
    return {num: true, v: isNaN(x) ? -Infinity : x};
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
    th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
    rows.sort(function (a, b) {
      var x = val(a.cells[col]), y = val(b.cells[col]);
      if (x.num && y.num) return dir * (x.v - y.v);
      return dir * String(x.v).localeCompare(String(y.v), undefined, {numeric: true});
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.addEventListener("click", function () { sortBy(table, i, th); });
    });
  });
  document.querySelectorAll("select.mapselect").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var map = document.getElementById(sel.getAttribute("data-map"));
      map.querySelectorAll("g.mapvariant").forEach(function (g) {
        g.style.display = g.getAttribute("data-variant") === sel.value ? "" : "none";
      });
    });
  });
})();
