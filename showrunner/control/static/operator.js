// The operator page: status from the server's event stream, buttons as POSTs to /api/*.
// Plain script, no build step, no outside URLs.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  const MAX_LOG = 100;

  const $ = (id) => document.getElementById(id);
  let last = null;          // last status from the server
  let countdownAt = 0;      // performance.now() when `last` arrived
  let sceneNames = "";      // scene list currently drawn, to redraw only on change

  function withToken(path) {
    if (!token) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  function newId() {
    // crypto.randomUUID needs a secure context, which a LAN http:// page is not.
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  }

  // -- commands ------------------------------------------------------------------------------

  // Answers can arrive out of order (a slow first request, a quick second one): only the
  // answer to the latest press is shown.
  let latest = 0;

  async function send(path, label) {
    const seq = ++latest;
    const id = newId();
    const headers = { "Content-Type": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    const body = JSON.stringify({ id: id, source: "page" });
    // One retry with the same id: if the first answer was lost, the server applies it once.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const response = await fetch(path, { method: "POST", headers: headers, body: body });
        const answer = await response.json().catch(() => ({}));
        if (seq === latest) showAnswer(label, response.status, answer);
        return;
      } catch (err) {
        if (attempt === 1 && seq === latest) showAnswer(label, 0, { error: String(err) });
      }
    }
  }

  function showAnswer(label, code, answer) {
    let text;
    if (answer.applied) text = label + " ✓";
    else if (answer.reason === "debounced") text = label + " ignored: pressed again too soon";
    else if (answer.reason === "duplicate") text = label + " already applied";
    else text = label + " failed" + (code ? " (" + code + ")" : "") + ": " + (answer.error || answer.reason || "no answer");
    const el = $("answer");
    el.textContent = text;
    el.dataset.applied = answer.applied ? "yes" : "no";
  }

  function bind(id, path, label) {
    $(id).addEventListener("click", () => send(path, label));
  }

  bind("go", "/api/go", "GO");
  bind("back", "/api/back", "BACK");
  bind("hold", "/api/hold", "HOLD");
  bind("resume", "/api/resume", "RESUME");
  bind("panic", "/api/panic", "PANIC");
  bind("reload", "/api/reload", "RELOAD");

  // -- status --------------------------------------------------------------------------------

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "—";
    const whole = Math.max(0, Math.ceil(s));
    const m = Math.floor(whole / 60);
    const sec = whole % 60;
    return m + ":" + String(sec).padStart(2, "0");
  }

  function render(status) {
    last = status;
    countdownAt = performance.now();
    $("now").textContent = status.scene || "—";
    $("next").textContent = status.next || "—";
    $("position").textContent = status.position !== null && status.position !== undefined
      ? "at " + fmtSeconds(status.position) : "";
    $("title").textContent = status.title ? "· " + status.title : "";
    $("waiting").textContent = status.waiting_for
      ? (status.waiting_for === "go" ? "waiting for GO" : "waiting for cue " + status.waiting_for)
      : "";
    // Anything but plain playing or waiting is worth a badge (hold, panic, closed, ended).
    const mode = status.mode || (status.held ? "hold" : "");
    const quiet = mode === "" || mode === "playing" || mode === "waiting";
    $("mode").hidden = quiet && !status.held;
    $("mode").textContent = quiet ? "HOLD" : mode.toUpperCase();
    $("mode").dataset.mode = quiet ? "hold" : mode;
    const conn = $("connection");
    conn.dataset.state = status.connection || "unknown";
    $("connection-text").textContent = "Scope: " + (status.connection || "unknown");
    renderScenes(status);
    renderList($("errors"), status.errors || []);
    renderList($("reload-errors"), status.reload_errors || []);
    tick();
  }

  function renderScenes(status) {
    const names = status.scenes || [];
    const key = JSON.stringify(names);
    const list = $("scenes");
    if (key !== sceneNames) {
      sceneNames = key;
      list.replaceChildren();
      names.forEach((name) => {
        const li = document.createElement("li");
        li.dataset.scene = name;
        const span = document.createElement("span");
        span.className = "name";
        span.textContent = name;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "GOTO";
        button.addEventListener("click", () =>
          send("/api/goto/" + encodeURIComponent(name), "GOTO " + name));
        li.append(span, button);
        list.append(li);
      });
    }
    for (const li of list.children) {
      li.classList.toggle("current", li.dataset.scene === status.scene);
      li.classList.toggle("next", li.dataset.scene === status.next);
    }
  }

  function renderList(el, items) {
    el.replaceChildren(...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
  }

  function tick() {
    // Counts down between server updates; the server corrects it every second.
    if (!last || last.countdown === null || last.countdown === undefined) {
      $("countdown").textContent = "—";
      return;
    }
    const elapsed = last.held ? 0 : (performance.now() - countdownAt) / 1000;
    $("countdown").textContent = fmtSeconds(last.countdown - elapsed);
  }
  setInterval(tick, 100);

  // -- log -----------------------------------------------------------------------------------

  function addLog(line) {
    const li = document.createElement("li");
    li.className = line.level || "info";
    const time = document.createElement("span");
    time.className = "time";
    const at = line.at ? new Date(line.at * 1000) : new Date();
    time.textContent = at.toLocaleTimeString();
    const text = document.createElement("span");
    text.textContent = line.text;
    li.append(time, text);
    const log = $("log");
    log.prepend(li);
    while (log.children.length > MAX_LOG) log.lastChild.remove();
  }

  // -- the event stream ----------------------------------------------------------------------

  function setLink(up) {
    $("link").dataset.state = up ? "up" : "down";
    $("link-text").textContent = up ? "control link up" : "control link down";
  }

  function connect() {
    const source = new EventSource(withToken("/api/events"));
    source.addEventListener("open", () => setLink(true));
    source.addEventListener("error", () => setLink(false));  // EventSource retries by itself
    source.addEventListener("status", (e) => { setLink(true); render(JSON.parse(e.data)); });
    source.addEventListener("log", (e) => addLog(JSON.parse(e.data)));
  }
  connect();

  // -- preview -------------------------------------------------------------------------------

  const preview = $("preview");
  function loadPreview() {
    preview.src = withToken("/preview.mjpg") + (token ? "&" : "?") + "t=" + Date.now();
  }
  preview.addEventListener("error", () => {
    // 503 until the show has a picture: try again shortly.
    preview.hidden = true;
    $("preview-none").hidden = false;
    setTimeout(loadPreview, 2000);
  });
  preview.addEventListener("load", () => {
    preview.hidden = false;
    $("preview-none").hidden = true;
  });
  // The first request may have failed before this script listened: ask again, now listening.
  loadPreview();
})();
