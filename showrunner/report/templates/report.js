{% raw %}
/* showrunner report: zoom, pan, minimap and hover details of the timeline. Everything it needs
   is in this page; it makes no request. Elements carry their times (data-t0/data-t1, data-t,
   data-d path templates); layout() maps seconds to pixels for the visible stretch. Labels are
   cut to the room they have and hidden when there is none, so no text is drawn over text. */
(function () {
  "use strict";
  var cfgNode = document.getElementById("report-config");
  var svg = document.getElementById("tl");
  var box = document.getElementById("tl-box");
  if (!cfgNode || !svg || !box) { return; }
  var cfg = JSON.parse(cfgNode.textContent);
  var NS = svg.namespaceURI;
  var G = cfg.gutter, R = cfg.padRight, SPAN = cfg.span;
  var W = 0, plot = cfg.plot, v0 = 0, v1 = SPAN;
  var MIN_VIEW = Math.min(SPAN, 2);
  var TICKS = [0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
  var BARS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

  function all(root, sel) { return Array.prototype.slice.call(root.querySelectorAll(sel)); }
  var rects = all(svg, "#items rect[data-t0]").map(function (el) {
    return { el: el, t0: +el.dataset.t0, t1: +el.dataset.t1, least: el.classList.contains("instant") ? 2 : 1 };
  });
  var lines = all(svg, "#items line[data-t]").map(function (el) { return { el: el, t: +el.dataset.t }; });
  var dots = all(svg, "#items circle[data-t]").map(function (el) { return { el: el, t: +el.dataset.t }; });
  var paths = all(svg, "#items path[data-d]").map(function (el) {
    var parts = el.dataset.d.split(/\{t:([^}]+)\}/);
    for (var i = 1; i < parts.length; i += 2) { parts[i] = +parts[i]; }
    return { el: el, parts: parts };
  });
  var labels = all(svg, "#items text[data-full]").map(function (el) {
    return { el: el, t0: +el.dataset.t0, end: +el.dataset.end, lim: +el.dataset.lim, full: el.dataset.full,
             maxw: el.dataset.maxw ? +el.dataset.maxw : Infinity, font: null };
  });
  var gutterNames = all(svg, ".gutter text[data-room]");
  var fullLines = all(svg, "line.full");
  var fullRects = all(svg, "rect.full-rect");
  var clipRect = document.getElementById("plot-clip-rect");
  var ticks = document.getElementById("ticks");
  var mm = document.getElementById("mm");
  var mmView = document.getElementById("mm-view");
  var mmRects = mm ? all(mm, "rect[data-t0]").map(function (el) {
    return { el: el, t0: +el.dataset.t0, t1: +el.dataset.t1 };
  }) : [];
  var mmBg = mm ? mm.querySelector(".mm-bg") : null;
  var range = document.getElementById("zoom-range");
  var ctx = document.createElement("canvas").getContext("2d");

  function X(t) { return G + (t - v0) * plot / (v1 - v0); }
  function r1(v) { return Math.round(v * 10) / 10; }

  function clock(s, fine) {
    var neg = s < 0; s = Math.abs(s);
    var whole = Math.floor(s + 1e-6), frac = s - whole;
    var h = Math.floor(whole / 3600), m = Math.floor(whole % 3600 / 60), sec = whole % 60;
    var text = (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(sec).padStart(2, "0");
    if (fine && frac > 0.001) { text += String(Math.round(frac * 100) / 100).slice(1); }
    return (neg ? "-" : "") + text;
  }

  function fontOf(el) {
    var cs = getComputedStyle(el);
    return cs.fontStyle + " " + cs.fontWeight + " " + cs.fontSize + " " + cs.fontFamily;
  }
  function measure(font, text) { ctx.font = font; return ctx.measureText(text).width; }
  function fitText(font, full, room) {
    if (room < 12) { return ""; }
    if (measure(font, full) <= room) { return full; }
    var lo = 0, hi = full.length;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (measure(font, full.slice(0, mid).trimEnd() + "…") <= room) { lo = mid; } else { hi = mid - 1; }
    }
    return lo >= 2 ? full.slice(0, lo).trimEnd() + "…" : "";
  }

  function placeLabels() {
    var right = G + plot - 3;
    var shown = [];
    labels.forEach(function (l) {
      var start = X(l.t0), end = Math.min(X(l.lim) - 3, right);
      var a = start + 3;
      /* the label of a clip that runs in from the left stays in view (an instant's does not) */
      if (a < G + 3 && l.end > l.t0 && X(Math.min(l.end, l.lim)) > G + 40) { a = G + 3; }
      var room = Math.min(end - a, l.maxw);
      if (!l.font) { l.font = fontOf(l.el); }
      var text = a > right || a < G ? "" : fitText(l.font, l.full, room);
      if (!text) { l.el.style.display = "none"; l.el.textContent = ""; return; }
      l.el.style.display = "";
      l.el.setAttribute("x", r1(a));
      l.el.textContent = text;
      l.room = room;
      shown.push(l);
    });
    /* the canvas and SVG may measure a font differently: trust the SVG */
    shown.forEach(function (l) {
      var text = l.el.textContent;
      while (text && l.el.getComputedTextLength() > l.room) {
        text = text.length > 3 ? text.slice(0, -2).trimEnd() + "…" : "";
        l.el.textContent = text;
      }
      if (!text) { l.el.style.display = "none"; }
    });
  }

  function makeTicks() {
    while (ticks.firstChild) { ticks.removeChild(ticks.firstChild); }
    var pps = plot / (v1 - v0);
    var step = TICKS.find(function (s) { return s * pps >= 70; }) || TICKS[TICKS.length - 1];
    var right = G + plot;
    var font = null;
    for (var t = Math.ceil(v0 / step) * step; t <= v1 + 1e-9; t += step) {
      var x = r1(X(t));
      var line = document.createElementNS(NS, "line");
      line.setAttribute("class", "grid");
      line.setAttribute("x1", x); line.setAttribute("x2", x);
      line.setAttribute("y1", cfg.rulerY + 16); line.setAttribute("y2", cfg.height);
      ticks.appendChild(line);
      var text = document.createElementNS(NS, "text");
      text.setAttribute("class", "tick");
      text.setAttribute("x", r1(x + 3)); text.setAttribute("y", cfg.rulerY + 12);
      var label = clock(t, step < 1);
      ticks.appendChild(text);
      if (!font) { font = fontOf(text); }
      if (x + 3 + measure(font, label) <= right) { text.textContent = label; } else { ticks.removeChild(text); }
    }
    if (cfg.bpm && cfg.barsY !== null) {
      var beat = 60 / cfg.bpm, bar = beat * cfg.beatsPerBar;
      var every = BARS.find(function (b) { return b * bar * pps >= 40; }) || BARS[BARS.length - 1];
      if (beat * pps >= 8) {
        for (var b = Math.ceil(v0 / beat); b * beat <= v1 + 1e-9; b++) {
          if (b % cfg.beatsPerBar === 0) { continue; }
          var bx = r1(X(b * beat));
          var tickLine = document.createElementNS(NS, "line");
          tickLine.setAttribute("class", "beat");
          tickLine.setAttribute("x1", bx); tickLine.setAttribute("x2", bx);
          tickLine.setAttribute("y1", cfg.barsY + 12); tickLine.setAttribute("y2", cfg.barsY + 17);
          ticks.appendChild(tickLine);
        }
      }
      for (var n = Math.ceil(v0 / bar / every) * every; n * bar <= v1 + 1e-9; n += every) {
        var xb = r1(X(n * bar));
        var barLine = document.createElementNS(NS, "line");
        barLine.setAttribute("class", "bar");
        barLine.setAttribute("x1", xb); barLine.setAttribute("x2", xb);
        barLine.setAttribute("y1", cfg.barsY + 2); barLine.setAttribute("y2", cfg.barsY + 17);
        ticks.appendChild(barLine);
        var barText = document.createElementNS(NS, "text");
        barText.setAttribute("class", "tick bar-lbl");
        barText.setAttribute("x", r1(xb + 3)); barText.setAttribute("y", cfg.barsY + 13);
        var name = String(n + 1);
        if (xb + 3 + measure(font || fontOf(barText), name) <= right) { barText.textContent = name; ticks.appendChild(barText); }
      }
    }
  }

  function layoutMinimap() {
    if (!mm) { return; }
    mm.setAttribute("viewBox", "0 0 " + W + " 24");
    mm.style.width = W + "px";
    var k = plot / SPAN;
    if (mmBg) { mmBg.setAttribute("width", r1(plot)); }
    mmRects.forEach(function (r) {
      r.el.setAttribute("x", r1(G + r.t0 * k));
      r.el.setAttribute("width", r1(Math.max(r.el.classList.contains("nopic-mm") ? 1 : 0, (r.t1 - r.t0) * k)));
    });
    mmView.setAttribute("x", r1(G + v0 * k));
    mmView.setAttribute("width", r1(Math.max(3, (v1 - v0) * k)));
  }

  function layout() {
    W = Math.max(480, Math.floor(box.clientWidth));
    plot = W - G - R;
    svg.setAttribute("viewBox", "0 0 " + W + " " + cfg.height);
    svg.setAttribute("width", W);
    svg.setAttribute("height", cfg.height);
    svg.style.width = W + "px";
    clipRect.setAttribute("width", r1(plot));
    fullLines.forEach(function (el) { el.setAttribute("x1", G); el.setAttribute("x2", r1(G + plot)); });
    fullRects.forEach(function (el) { el.setAttribute("width", r1(plot)); });
    rects.forEach(function (r) {
      var a = X(r.t0), b = X(r.t1);
      r.el.setAttribute("x", r1(a));
      r.el.setAttribute("width", r1(Math.max(r.least, b - a)));
    });
    lines.forEach(function (l) { var x = r1(X(l.t)); l.el.setAttribute("x1", x); l.el.setAttribute("x2", x); });
    dots.forEach(function (d) { d.el.setAttribute("cx", r1(X(d.t))); });
    paths.forEach(function (p) {
      var out = "";
      for (var i = 0; i < p.parts.length; i++) { out += i % 2 ? r1(X(p.parts[i])) : p.parts[i]; }
      p.el.setAttribute("d", out);
    });
    makeTicks();
    placeLabels();
    layoutMinimap();
    if (range) { range.textContent = clock(v0) + "–" + clock(v1) + (v1 - v0 < SPAN - 1e-6 ? " of " + clock(SPAN) : ""); }
  }

  function setView(a, b) {
    var len = Math.max(MIN_VIEW, Math.min(SPAN, b - a));
    a = Math.max(0, Math.min(a, SPAN - len));
    v0 = a; v1 = a + len;
    layout();
  }
  function zoom(factor, at) {
    if (at === undefined) { at = (v0 + v1) / 2; }
    var len = (v1 - v0) / factor;
    var u = (at - v0) / (v1 - v0);
    setView(at - u * len, at - u * len + len);
  }
  function timeAt(clientX) {
    var rect = svg.getBoundingClientRect();
    return v0 + (clientX - rect.left - G) / plot * (v1 - v0);
  }

  svg.addEventListener("wheel", function (e) {
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      zoom(Math.exp(-e.deltaY * 0.002), Math.max(v0, Math.min(v1, timeAt(e.clientX))));
    } else if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      e.preventDefault();
      var d = (e.shiftKey ? e.deltaY : e.deltaX) / plot * (v1 - v0);
      setView(v0 + d, v1 + d);
    }
  }, { passive: false });

  var drag = null;
  svg.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) { return; }
    drag = { x: e.clientX, v0: v0, v1: v1, moved: false, target: e.target };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", function (e) {
    if (drag) {
      var dx = e.clientX - drag.x;
      if (Math.abs(dx) > 3) { drag.moved = true; svg.classList.add("dragging"); }
      if (drag.moved) {
        var d = -dx / plot * (drag.v1 - drag.v0);
        setView(drag.v0 + d, drag.v1 + d);
      }
    }
    hover(e);
  });
  svg.addEventListener("pointerup", function (e) {
    var was = drag; drag = null; svg.classList.remove("dragging");
    if (was && !was.moved) { openScene(was.target); }  /* the pointer is captured: use where it went down */
  });
  svg.addEventListener("pointerleave", function () { tip.hidden = true; });
  svg.addEventListener("keydown", function (e) {
    var step = (v1 - v0) * 0.2;
    if (e.key === "+" || e.key === "=") { zoom(1.5); }
    else if (e.key === "-") { zoom(1 / 1.5); }
    else if (e.key === "0") { setView(0, SPAN); }
    else if (e.key === "ArrowLeft") { setView(v0 - step, v1 - step); }
    else if (e.key === "ArrowRight") { setView(v0 + step, v1 + step); }
    else { return; }
    e.preventDefault();
  });
  function on(id, f) { var el = document.getElementById(id); if (el) { el.addEventListener("click", f); } }
  on("zoom-in", function () { zoom(2); });
  on("zoom-out", function () { zoom(0.5); });
  on("zoom-fit", function () { setView(0, SPAN); });

  if (mm) {
    var mmDrag = false;
    var center = function (e) {
      var rect = mm.getBoundingClientRect();
      var t = (e.clientX - rect.left - G) / plot * SPAN;
      var len = v1 - v0;
      setView(t - len / 2, t + len / 2);
    };
    mm.addEventListener("pointerdown", function (e) { mmDrag = true; mm.setPointerCapture(e.pointerId); center(e); });
    mm.addEventListener("pointermove", function (e) { if (mmDrag) { center(e); } });
    mm.addEventListener("pointerup", function () { mmDrag = false; });
  }

  var tip = document.getElementById("tip");
  function itemOf(target) {
    var el = target && target.closest ? target.closest("[data-item]") : null;
    return el ? cfg.items[+el.dataset.item] : null;
  }
  function line(parent, text, cls) {
    var div = document.createElement("div");
    if (cls) { div.className = cls; }
    div.textContent = text;
    parent.appendChild(div);
  }
  function hover(e) {
    var item = itemOf(e.target);
    if (!item || drag && drag.moved) { tip.hidden = true; return; }
    tip.textContent = "";
    var head = document.createElement("b");
    head.textContent = item.name;
    tip.appendChild(head);
    line(tip, item.start + " – " + item.end + " · " + item.trigger + " · " + item.pipeline);
    line(tip, item.prompts);
    if (item.notes) { line(tip, "✎ " + item.notes); }
    if (item.dark) { line(tip, "no picture for ~" + item.dark + " s (reload + reconnect, estimate)", "warn"); }
    tip.hidden = false;
    var x = e.clientX + 14, y = e.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth - 4) { x = Math.max(4, e.clientX - w - 14); }
    if (y + h > window.innerHeight - 4) { y = Math.max(4, e.clientY - h - 14); }
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  function openScene(target) {
    var item = itemOf(target);
    if (!item) { return; }
    var details = document.getElementById("scene-" + item.index);
    if (details) { details.open = true; details.scrollIntoView({ block: "start" }); }
  }

  var pending = false;
  window.addEventListener("resize", function () {
    if (pending) { return; }
    pending = true;
    requestAnimationFrame(function () { pending = false; layout(); });
  });
  window.showrunnerTimeline = {
    view: function () { return [v0, v1]; },
    setView: setView,
    zoom: zoom,
    fit: function () { setView(0, SPAN); }
  };
  gutterNames.forEach(function (el) {  /* lane names: as much as the gutter holds, in its real font */
    var room = +el.dataset.room;
    var text = fitText(fontOf(el), el.dataset.full, room);
    el.textContent = text;
    while (text && el.getComputedTextLength() > room) {
      text = text.length > 3 ? text.slice(0, -2).trimEnd() + "…" : "";
      el.textContent = text;
    }
    var title = document.createElementNS(NS, "title");
    title.textContent = el.dataset.full;
    el.appendChild(title);
  });
  layout();
  document.documentElement.dataset.timeline = "ready";
})();
{% endraw %}
