// The operator page: status from the server's event stream, buttons as POSTs to /api/*.
// Plain script, no build step, no outside URLs. Times are 24 h (HH:MM:SS), as in the terminal.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  const MAX_LOG = 100;
  const ARM_SECONDS = 8;    // an armed GOTO falls back after this long

  const $ = (id) => document.getElementById(id);
  let last = null;          // last status from the server
  let statusAt = 0;         // performance.now() when `last` arrived
  let sceneKey = "";        // scene list currently drawn, to redraw only on change
  let details = {};         // scene name -> {trigger, duration, prompts, notes, ...} (GET /api/show)
  let planSeen = null;      // the plan the details belong to
  let linkUp = false;
  let armed = null;         // the scene a GOTO is armed for (fires on GO or a second click)
  let armedAt = 0;

  function withToken(path) {
    if (!token) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  function newId() {
    // crypto.randomUUID needs a secure context, which a LAN http:// page is not.
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function clock24(date) {
    return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "—";
    const whole = Math.max(0, Math.ceil(s - 1e-6));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const sec = whole % 60;
    return h ? h + ":" + pad(m) + ":" + pad(sec) : m + ":" + pad(sec);
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

  const REASONS = {
    debounced: "pressed again too soon",
    duplicate: "already applied",
    connecting: "Scope is connecting",
    "switching pipelines": "a pipeline is loading",
  };

  function showAnswer(label, code, answer) {
    let text;
    const why = REASONS[answer.reason] || answer.reason;
    if (answer.applied) text = label + " ✓" + (answer.detail ? " → " + answer.detail : "");
    else if (answer.result === "queued") text = label + " armed: runs when " + (why || "ready");
    else if (answer.result === "ignored" && code < 500 && code !== 0)
      text = label + " ignored: " + (why || "") + (answer.detail ? " (" + answer.detail + ")" : "") +
        (answer.error && answer.error !== answer.detail ? " — " + answer.error : "");
    else text = label + " failed" + (code ? " (" + code + ")" : "") + ": " + (answer.error || why || "no answer");
    const el = $("answer");
    el.textContent = text;
    el.dataset.applied = answer.applied ? "yes" : answer.result === "queued" ? "queued" : "no";
  }

  function go() {
    if (!linkUp) return;
    if (armed !== null) {
      const name = armed;
      disarm();
      send("/api/goto/" + encodeURIComponent(name), "GOTO " + name);
      return;
    }
    send("/api/go", "GO");
  }

  function bind(id, path, label) {
    $(id).addEventListener("click", () => send(path, label));
  }

  $("go").addEventListener("click", go);
  bind("back", "/api/back", "BACK");
  bind("hold", "/api/hold", "HOLD");
  bind("resume", "/api/resume", "RESUME");
  bind("panic", "/api/panic", "PANIC");
  bind("reload", "/api/reload", "RELOAD");

  // The space bar is GO (not a click on whatever button has the focus); Esc disarms a GOTO.
  document.addEventListener("keydown", (e) => {
    const tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA") return;
    if (e.key === " " || e.code === "Space") {
      e.preventDefault();
      if (!e.repeat) go();
    } else if (e.key === "Escape") {
      disarm();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.key === " " || e.code === "Space") e.preventDefault();
  });

  function arm(name) {
    if (armed === name) { go(); return; }  // the second click fires
    armed = name;
    armedAt = performance.now();
    drawGo();
    drawArmed();
  }

  function disarm() {
    if (armed === null) return;
    armed = null;
    drawGo();
    drawArmed();
  }

  // -- status --------------------------------------------------------------------------------

  function describe(name) {
    const d = details[name];
    if (!d) return "";
    const parts = [d.trigger];
    if (d.duration !== null && d.duration !== undefined) parts.push(fmtSeconds(d.duration));
    if (d.pipeline) parts.push(d.pipeline);
    return parts.join(" · ");
  }

  function render(status) {
    last = status;
    statusAt = performance.now();
    if (status.plan !== planSeen) loadDetails(status.plan);
    const standby = !status.scene && !!status.on_air;
    $("now").textContent = status.scene || status.on_air || "—";
    $("standby").hidden = !standby;
    $("now-detail").textContent = describe(status.scene || status.on_air);
    $("next").textContent = status.next || "—";
    $("next-detail").textContent = standby && status.next === status.on_air
      ? "on air, standing by: GO starts it" : describe(status.next);
    $("title").textContent = status.title ? "· " + status.title : "";
    let waiting = "";
    if (status.waiting_for) waiting = status.waiting_for === "go" ? "waiting for GO" : "waiting for cue " + status.waiting_for;
    else if (status.mode === "pending") waiting = "first scene pending";
    $("waiting").textContent = waiting;
    // Anything but plain playing or waiting is worth a badge (hold, panic, closed, ended, pending).
    const mode = status.mode || (status.held ? "hold" : "");
    const quiet = mode === "" || mode === "playing" || mode === "waiting";
    $("mode").hidden = quiet && !status.held;
    $("mode").textContent = quiet ? "HOLD" : mode.toUpperCase();
    $("mode").dataset.mode = quiet ? "hold" : mode;
    const conn = $("connection");
    conn.dataset.state = status.connection || "unknown";
    $("connection-text").textContent = "Scope: " + (status.connection || "unknown");
    const hours = $("hours");
    hours.hidden = !status.hours;
    hours.dataset.state = status.closed ? "closed" : "up";
    $("hours-text").textContent = status.hours || "";
    renderTempo(status.tempo);
    renderBanner(status);
    renderCues(status);
    renderScenes(status);
    const reloadErrors = status.reload_errors || [];
    // Each error once: a reload error is listed under "Reload errors" only.
    const errors = [...new Set((status.errors || []).filter((e) => !reloadErrors.includes(e)))];
    renderList($("errors"), errors);
    renderList($("reload-errors"), [...new Set(reloadErrors)]);
    drawGo();
    tick();
  }

  function renderBanner(status) {
    const banner = $("banner");
    let text = "";
    let kind = "";
    if (!linkUp) {
      text = "CONTROL LINK DOWN — this page cannot reach showrunner; reconnecting…";
      kind = "link";
    } else if (status.switching) {
      const about = status.switch_estimate ? " (about " + Math.round(status.switch_estimate) + " s)" : "";
      text = "NO OUTPUT — switching to " + status.switching + about;
      kind = "switch";
    } else if (status.mode === "pending" && status.notice) {
      text = "NO OUTPUT — " + status.notice + "; the first scene starts when it answers";
      kind = "pending";
    } else if (status.mode === "closed") {
      text = "CLOSED" + (status.hours ? " — " + status.hours.replace(/^closed,\s*/, "") : "");
      if (status.notice) text += " — " + status.notice;
      kind = "closed";
    } else if (status.notice) {
      text = "NO OUTPUT — " + status.notice;
      kind = "pending";
    } else if (status.working) {  // a long reload or upload; the show plays on meanwhile
      const done = status.work_progress != null ? " " + Math.round(status.work_progress * 100) + " %" : "…";
      text = "WORKING — " + status.working + done;
      kind = "working";
    }
    banner.hidden = !text;
    banner.textContent = text;
    banner.dataset.kind = kind;
    // A stale frame must not pass for the picture on air.
    $("preview-box").classList.toggle("stale", kind === "switch" || kind === "pending");
  }

  function renderCues(status) {
    const cues = status.cues || [];
    const box = $("cues");
    if (box.dataset.key === JSON.stringify(cues)) return;
    box.dataset.key = JSON.stringify(cues);
    box.replaceChildren(...cues.map((name) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "cue";
      button.dataset.cue = name;
      button.textContent = "CUE " + name;
      button.addEventListener("click", () => send("/api/cue/" + encodeURIComponent(name), "CUE " + name));
      return button;
    }));
  }

  function renderScenes(status) {
    const names = status.scenes || [];
    const key = JSON.stringify(names) + "|" + JSON.stringify(details === null ? 0 : Object.keys(details).length);
    const list = $("scenes");
    if (key !== sceneKey) {
      sceneKey = key;
      list.replaceChildren();
      names.forEach((name) => {
        const d = details[name] || {};
        const li = document.createElement("li");
        li.dataset.scene = name;
        const head = document.createElement("div");
        head.className = "head";
        const span = document.createElement("span");
        span.className = "name";
        span.textContent = name;
        const meta = document.createElement("span");
        meta.className = "meta";
        meta.textContent = describe(name);
        const button = document.createElement("button");
        button.type = "button";
        button.className = "goto";
        button.textContent = "GOTO";
        button.addEventListener("click", () => arm(name));
        head.append(span, meta, button);
        li.append(head);
        if (d.prompts && d.prompts.length) {
          const prompts = document.createElement("div");
          prompts.className = "prompts";
          prompts.textContent = d.prompts.map((p) =>
            p.text + (d.prompts.length > 1 || p.weight !== 1 ? " (" + p.weight + ")" : "")).join(" | ");
          li.append(prompts);
        }
        if (d.notes) {
          const notes = document.createElement("div");
          notes.className = "notes";
          notes.textContent = d.notes;
          li.append(notes);
        }
        list.append(li);
      });
      drawArmed();
    }
    for (const li of list.children) {
      li.classList.toggle("current", li.dataset.scene === (status.scene || status.on_air));
      li.classList.toggle("next", li.dataset.scene === status.next && status.next !== status.on_air);
    }
  }

  function drawArmed() {
    for (const li of $("scenes").children) {
      const on = li.dataset.scene === armed;
      li.classList.toggle("armed", on);
      const button = li.querySelector("button.goto");
      if (button) button.textContent = on ? "GOTO ✓?" : "GOTO";
    }
  }

  function drawGo() {
    const button = $("go");
    let text = "GO";
    let title = "Start the next scene (space bar)";
    if (armed !== null) {
      text = "GO → " + armed;
      title = "Jump to " + armed + " (armed from the scene list; Esc cancels)";
    } else if (last && last.armed) {
      text = "GO armed";
      title = "Runs as soon as Scope is up";
    } else if (last && last.next) {
      text = "GO → " + last.next;
    }
    button.textContent = text;
    button.title = title;
    button.dataset.armed = armed !== null ? "goto" : "";
  }

  async function loadDetails(plan) {
    planSeen = plan;
    try {
      const response = await fetch(withToken("/api/show"), { cache: "no-store" });
      if (!response.ok) return;
      const show = await response.json();
      const next = {};
      for (const scene of show.scenes || []) next[scene.name] = scene;
      details = next;
      sceneKey = "";
      if (last) render(last);
    } catch (err) {
      planSeen = null;  // try again with the next status
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
    // Counts down between server updates; the server corrects it every second. Held: frozen.
    if (armed !== null && performance.now() - armedAt > ARM_SECONDS * 1000) disarm();
    if (!last) return;
    const held = !!last.held;
    const elapsed = held ? 0 : (performance.now() - statusAt) / 1000;
    const remaining = held ? last.remaining : last.countdown;
    $("countdown").textContent = remaining === null || remaining === undefined
      ? "—" : fmtSeconds(remaining - elapsed);
    $("countdown").dataset.held = held ? "yes" : "no";
    const position = last.position;
    $("position").textContent = position !== null && position !== undefined
      ? "at " + fmtSeconds(position + elapsed) + (held ? " (held)" : "") : "";
    const bar = $("progress-bar");
    bar.parentElement.hidden = position === null || position === undefined;
    if (position !== null && position !== undefined && remaining !== null && remaining !== undefined) {
      const total = position + remaining;
      bar.style.width = (total > 0 ? Math.min(100, 100 * (position + elapsed) / total) : 0) + "%";
    } else {
      bar.style.width = "0%";
    }
    $("show-clock").textContent = last.show_clock !== null && last.show_clock !== undefined
      ? fmtSeconds(last.show_clock + (performance.now() - statusAt) / 1000) : "—";
  }
  setInterval(tick, 100);

  // -- log -----------------------------------------------------------------------------------

  function addLog(line) {
    const log = $("log");
    const first = log.firstChild;
    if (first && first.dataset.text === line.text) {
      // The same line again (a retried error): counted, not repeated.
      const count = Number(first.dataset.count || "1") + 1;
      first.dataset.count = String(count);
      first.querySelector(".count").textContent = " ×" + count;
      return;
    }
    const li = document.createElement("li");
    li.className = line.level || "info";
    li.dataset.text = line.text;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = clock24(line.at ? new Date(line.at * 1000) : new Date());
    const text = document.createElement("span");
    text.textContent = line.text;
    const count = document.createElement("span");
    count.className = "count";
    li.append(time, text, count);
    log.prepend(li);
    while (log.children.length > MAX_LOG) log.lastChild.remove();
  }

  // -- tempo ---------------------------------------------------------------------------------

  // The last tempo block and when it arrived: the page counts the beat on at its bpm between
  // two status events.
  let tempo = null;
  let tempoAt = 0;

  function renderTempo(block) {
    tempo = block || null;
    tempoAt = performance.now();
    const box = $("tempo");
    box.hidden = !tempo;
    if (!tempo) return;
    $("tempo-bpm").textContent = tempo.bpm.toFixed(1);
    let source = tempo.source;
    if (tempo.peers !== null && tempo.peers !== undefined) source += " · " + tempo.peers + (tempo.peers === 1 ? " peer" : " peers");
    if (!tempo.playing) source += " · stopped";
    $("tempo-source").textContent = source;
    box.dataset.state = tempo.error ? "error" : tempo.playing ? "playing" : "stopped";
    box.title = tempo.error ? "Tempo: " + tempo.error : "Tempo: bpm, bar.beat, source";
    tickTempo();
  }

  function tickTempo() {
    if (!tempo) return;
    let beat = tempo.beat;
    if (tempo.playing) beat += (performance.now() - tempoAt) / 1000 * tempo.bpm / 60;
    const whole = Math.floor(Math.max(beat, 0));
    const bar = Math.floor(whole / tempo.beats_per_bar) + 1;
    const inBar = (whole % tempo.beats_per_bar) + 1;
    $("tempo-beat").textContent = bar + "." + inBar;
    const box = $("tempo");
    const onBeat = tempo.playing && beat - whole < 0.15;
    box.dataset.onbeat = onBeat && inBar !== 1 ? "yes" : "no";
    box.dataset.downbeat = onBeat && inBar === 1 ? "yes" : "no";
  }
  setInterval(tickTempo, 40);

  async function tap() {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    let text;
    try {
      const response = await fetch("/api/tempo/tap", { method: "POST", headers: headers });
      const answer = await response.json().catch(() => ({}));
      if (answer.applied) text = "TAP ✓" + (answer.bpm ? " → " + answer.bpm.toFixed(1) + " bpm" : "");
      else text = "TAP ignored — " + (answer.error || response.status);
    } catch (err) {
      text = "TAP failed: " + String(err);
    }
    $("answer").textContent = text;
  }
  $("tap").addEventListener("click", tap);
  document.addEventListener("keydown", (e) => {
    const tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || e.repeat) return;
    if (e.key === "t" || e.key === "T") tap();
  });

  // -- the event stream ----------------------------------------------------------------------

  function setLink(up) {
    linkUp = up;
    $("link").dataset.state = up ? "up" : "down";
    $("link-text").textContent = up ? "control link up" : "control link down";
    // Buttons that could not reach showrunner must not look as if they would.
    for (const button of document.querySelectorAll("#buttons button, #scenes button")) {
      button.disabled = !up;
    }
    renderBanner(last || {});
  }
  setLink(false);

  function connect() {
    const source = new EventSource(withToken("/api/events"));
    source.addEventListener("open", () => setLink(true));
    source.addEventListener("error", () => setLink(false));  // EventSource retries by itself
    source.addEventListener("status", (e) => {
      if (!linkUp) setLink(true);
      render(JSON.parse(e.data));
    });
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
