// The live inputs panel: meters for the show's inputs, and MIDI learn mode (press a control on
// the device, pick an action, MAP: the mapping is written into the show file's `controls:`).
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const $ = (id) => document.getElementById(id);
  const withToken = (path) =>
    token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path;

  function describe(last) {
    if (!last) return "press a control on the device";
    const channel = last.channel ? " ch " + last.channel : "";
    const value = last.kind === "cc" ? " = " + last.value : "";
    return last.kind + " " + last.number + channel + value;
  }

  function post(path, body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body) });
  }

  function meterItem(input) {
    const li = document.createElement("li");
    li.dataset.name = input.name;
    const name = document.createElement("span");
    name.className = "meter-name";
    name.textContent = input.name;
    let gauge;
    if (input.kind === "lfo") {
      gauge = document.createElement("span");
      gauge.className = "meter";
      gauge.innerHTML = '<span class="meter-bar"></span>';
    } else {
      // An input the operator may set from here too (rehearsing without the desk).
      gauge = document.createElement("input");
      gauge.type = "range";
      gauge.min = "0";
      gauge.max = "1";
      gauge.step = "0.01";
      gauge.className = "meter-slider";
      gauge.title = "Set " + input.name;
      gauge.addEventListener("input", () => {
        post("/api/inputs/" + encodeURIComponent(input.name), { value: Number(gauge.value) })
          .catch(() => {});
      });
    }
    const value = document.createElement("span");
    value.className = "meter-value";
    const kind = document.createElement("span");
    kind.className = "meter-kind";
    li.append(name, gauge, value, kind);
    return li;
  }

  function meters(inputs) {
    const list = $("meters");
    const key = JSON.stringify(inputs.map((i) => [i.name, i.kind === "lfo"]));
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      list.replaceChildren(...inputs.map(meterItem));
    }
    inputs.forEach((input, i) => {
      const li = list.children[i];
      const bar = li.querySelector(".meter-bar");
      if (bar) bar.style.width = (input.value * 100).toFixed(1) + "%";
      const slider = li.querySelector(".meter-slider");
      if (slider && document.activeElement !== slider) slider.value = String(input.value);
      li.querySelector(".meter-value").textContent = input.value.toFixed(2);
      li.querySelector(".meter-kind").textContent = input.kind;
      li.dataset.value = String(input.value);
      li.dataset.kind = input.kind;
    });
  }

  let scenes = [], cues = [];
  function actions(inputs) {
    const out = ["go", "back", "hold", "resume", "panic"].map((a) => [a, a, ""]);
    for (const s of scenes) out.push(["goto " + s, "goto", s]);
    for (const c of cues) out.push(["cue " + c, "cue", c]);
    for (const i of inputs) if (i.kind !== "lfo") out.push(["input " + i.name, "input", i.name]);
    const select = $("learn-action");
    const key = JSON.stringify(out);
    if (select.dataset.key === key) return;
    select.dataset.key = key;
    const chosen = select.value;
    select.replaceChildren(...out.map(([label, action, name]) => {
      const option = document.createElement("option");
      option.value = JSON.stringify({ action: action, name: name || null });
      option.textContent = label;
      return option;
    }));
    for (const option of select.options) if (option.value === chosen) select.value = chosen;
  }

  // Meters poll four times a second while the show has inputs or a MIDI device (every two
  // seconds otherwise); the scene and cue names for the learn menu every two seconds.
  let polls = 0;
  async function poll() {
    let live = false;
    try {
      const response = await fetch(withToken("/api/inputs"), { cache: "no-store" });
      if (response.ok) {
        const data = await response.json();
        live = data.inputs.length > 0 || !!data.midi;
        $("inputs-box").hidden = !live;
        meters(data.inputs);
        $("learn").hidden = !data.midi;
        if (data.midi) {
          $("learn-device").textContent = data.midi.device + (data.midi.port ? "" : " (not connected)");
          $("learn-last").textContent = describe(data.midi.last);
          $("learn-map").disabled = !data.midi.last;
          if (polls % 8 === 0) {
            const status = await fetch(withToken("/api/status"), { cache: "no-store" });
            if (status.ok) {
              const s = await status.json();
              scenes = s.scenes || [];
              cues = s.cues || [];
            }
          }
          actions(data.inputs);
        }
      }
    } catch (error) {
      // the control link is down: the main page says so
    }
    polls += 1;
    setTimeout(poll, live ? 250 : 2000);
  }

  $("learn-map").addEventListener("click", async () => {
    const answer = $("learn-answer");
    try {
      const response = await post("/api/controls", JSON.parse($("learn-action").value));
      const body = await response.json();
      answer.textContent = response.ok
        ? "mapped " + JSON.stringify(body.learned) + " — written to the show"
        : "not mapped: " + body.error;
      answer.dataset.ok = String(response.ok);
    } catch (error) {
      answer.textContent = "not mapped: the control link is down";
      answer.dataset.ok = "false";
    }
  });

  poll();
})();
