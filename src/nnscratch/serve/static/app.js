// nnscratch drawing page: draw with mouse, finger or pen; the server reads the drawing live.
// Everything comes from this server (no other host), so the page works offline.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const THROTTLE_MS = 120;          // at most one live reading per this interval while drawing

  const state = {
    models: [], model: null, compare: "",
    hasInk: false, drawing: false, last: null,
    inFlight: false, pending: false, lastSent: 0, seq: 0, shown: 0, timer: null, saving: false,
  };

  function setStatus(text) { $("status").textContent = text || ""; }

  // ------------------------------------------------------------------ the pad
  function clearPad() {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#fff";               // opaque white paper: a transparent canvas would read as blank
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.restore();
    state.hasInk = false;
  }

  function point(event) {
    const rect = pad.getBoundingClientRect();
    return {
      x: (event.clientX - rect.left) * (pad.width / rect.width),
      y: (event.clientY - rect.top) * (pad.height / rect.height),
    };
  }

  function penWidth(event) {
    const base = Number($("pen").value);
    // A pen's pressure thickens the stroke a little; mouse and touch report 0.5 or 0.
    const p = event.pointerType === "pen" && event.pressure > 0 ? event.pressure : 0.5;
    return base * (0.7 + 0.6 * p);
  }

  function strokeTo(p, width) {
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#000";
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(state.last.x, state.last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    state.last = p;
    state.hasInk = true;
  }

  pad.addEventListener("pointerdown", (event) => {
    if (event.button !== undefined && event.button > 0) return;
    event.preventDefault();
    try { pad.setPointerCapture(event.pointerId); } catch (e) { /* synthetic events have no capture */ }
    state.drawing = true;
    state.last = point(event);
    strokeTo({ x: state.last.x + 0.01, y: state.last.y }, penWidth(event));   // a dot for a tap
    scheduleReading();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of (events.length ? events : [event])) strokeTo(point(e), penWidth(e));
    scheduleReading();
  });
  function endStroke(event) {
    if (!state.drawing) return;
    state.drawing = false;
    try { pad.releasePointerCapture(event.pointerId); } catch (e) { /* already released */ }
    scheduleReading(true);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("contextmenu", (e) => e.preventDefault());

  // A press of a button by mouse (click), or by finger or pen (pointerup on the button the
  // pointer went down on: after a stroke on the pad, a quick tap's click is not always delivered).
  function onPress(element, action) {
    let down = null, pressed = -Infinity;
    element.addEventListener("pointerdown", (e) => { down = e.pointerType === "mouse" ? null : e.pointerId; });
    element.addEventListener("pointerup", (e) => {
      if (e.pointerId !== down) return;
      down = null;
      pressed = performance.now();
      action();
    });
    element.addEventListener("pointercancel", () => { down = null; });
    element.addEventListener("click", () => { if (performance.now() - pressed > 700) action(); });
  }

  onPress($("clear"), () => {
    clearPad();
    state.seq += 1;                    // answers still on their way are for the old drawing
    showEmpty();
  });

  // ------------------------------------------------------------------ reading
  // aria-busy on the reading cards: true from a change of the drawing until its reading is shown
  // (screen readers wait for it; so do the browser tests).
  function setBusy(busy) {
    for (const id of ["reading-1", "reading-2"]) $(id).setAttribute("aria-busy", String(busy));
  }

  function scheduleReading(now) {
    if (!state.hasInk) return;
    setBusy(true);
    if (state.inFlight) { state.pending = true; return; }
    const wait = now ? 0 : Math.max(0, state.lastSent + THROTTLE_MS - performance.now());
    clearTimeout(state.timer);
    state.timer = setTimeout(readDrawing, wait);
  }

  function canvasBlob() {
    return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  }

  async function postPicture(url, blob) {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
    const body = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) throw new Error(body.detail || ("HTTP " + response.status));
    return body;
  }

  async function readDrawing() {
    if (!state.hasInk || !state.model) { setBusy(false); return; }
    state.inFlight = true;
    state.pending = false;
    state.lastSent = performance.now();
    const seq = ++state.seq;
    try {
      const blob = await canvasBlob();
      const asks = [postPicture("/api/predict?details=true&model=" + encodeURIComponent(state.model), blob)];
      if (state.compare) asks.push(postPicture("/api/predict?model=" + encodeURIComponent(state.compare), blob));
      // Each model's reading on its own: a second model that cannot read (a broken file) must not
      // hide the first one's answer.
      const [first, second] = await Promise.allSettled(asks);
      if (seq === state.seq && state.hasInk) {
        if (first.status === "fulfilled") {
          showReading(first.value, "");
          showInside(first.value);
          setStatus("");
        } else {
          setStatus("could not read the drawing: " + first.reason.message);
        }
        if (second && second.status === "fulfilled") showReading(second.value, "-2");
        else if (second) showUnread("-2", second.reason.message);
      }
    } catch (error) {
      if (seq === state.seq) setStatus("could not read the drawing: " + error.message);
    } finally {
      state.inFlight = false;
      if (state.pending && state.hasInk) scheduleReading(!state.drawing);
      else setBusy(false);
    }
  }

  function buildBars(container) {
    container.textContent = "";
    for (let k = 0; k < 10; k++) {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = '<span class="k"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
      row.querySelector(".k").textContent = String(k);
      container.appendChild(row);
    }
  }

  function setBars(container, probabilities, label) {
    const rows = container.children;
    for (let k = 0; k < rows.length; k++) {
      const p = probabilities ? probabilities[k] || 0 : 0;
      rows[k].querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
      rows[k].querySelector(".pct").textContent = probabilities ? (100 * p).toFixed(1) + "%" : "";
      rows[k].classList.toggle("best", probabilities !== null && k === label);
    }
  }

  function showReading(answer, suffix) {
    const out = $("prediction" + suffix);
    const text = $("verdict" + suffix);
    $("architecture" + suffix).textContent = answer.architecture || "";
    if (answer.label === null || answer.label === undefined) {
      out.textContent = "?";
      out.className = "digit empty";
      text.textContent = answer.note ? "draw a digit (" + answer.note + ")" : "draw a digit";
      text.className = "verdict-text";
      setBars($("bars" + suffix), null, null);
      return;
    }
    out.textContent = String(answer.label);
    const pct = (100 * answer.confidence).toFixed(0) + "%";
    if (answer.uncertain) {
      out.className = "digit uncertain";
      const why = (answer.reasons || []).join("; ");
      text.textContent = "uncertain: maybe " + answer.label + " (" + pct + ")" + (why ? " · " + why : "");
      text.className = "verdict-text uncertain";
    } else {
      out.className = "digit";
      text.textContent = "reads " + answer.label + " · " + pct + " sure";
      text.className = "verdict-text";
    }
    setBars($("bars" + suffix), answer.probabilities, answer.label);
  }

  function showUnread(suffix, message) {
    $("prediction" + suffix).textContent = "·";
    $("prediction" + suffix).className = "digit empty";
    $("verdict" + suffix).textContent = "could not read the drawing: " + message;
    $("verdict" + suffix).className = "verdict-text uncertain";
    $("architecture" + suffix).textContent = "";
    setBars($("bars" + suffix), null, null);
  }

  function showEmpty() {
    for (const suffix of ["", "-2"]) {
      $("prediction" + suffix).textContent = suffix ? "·" : "?";
      $("prediction" + suffix).className = "digit empty";
      $("verdict" + suffix).className = "verdict-text";
      setBars($("bars" + suffix), null, null);
    }
    $("verdict").textContent = "draw a digit";
    $("verdict-2").textContent = state.compare ? "draw a digit" : "pick a second model to read the same drawing";
    showEmptyInside();
  }

  // Nothing to read: empty frames and a hint, no black squares that look like a reading.
  function showEmptyInside() {
    for (const id of ["stage-crop", "stage-fitted", "stage-field"]) $(id).removeAttribute("src");
    for (const id of ["saliency", "saliency-ink"]) $(id).getContext("2d").clearRect(0, 0, 28, 28);
    $("activations").textContent = "";
    $("filters").textContent = "";
    $("stages").classList.add("empty");
    $("inside-hint").hidden = false;
  }

  function setImage(id, url) {
    if (url) $(id).src = url; else $(id).removeAttribute("src");
  }

  // A signed 28x28 map on black: red where it raises the answer's score, blue where it lowers it,
  // over the digit drawn faintly.
  function drawSigned(id, input, values) {
    const s = $(id).getContext("2d");
    const image = s.createImageData(28, 28);
    let top = 0;
    if (values) for (const row of values) for (const v of row) top = Math.max(top, Math.abs(v));
    for (let i = 0; i < 28; i++) {
      for (let j = 0; j < 28; j++) {
        const ink = input ? input[i][j] : 0;
        const g = values && top > 0 ? values[i][j] / top : 0;
        const base = 40 * ink;
        const o = 4 * (28 * i + j);
        const strength = Math.min(1, Math.sqrt(Math.abs(g)));
        image.data[o] = base + (g > 0 ? 214 * strength : 47 * strength);
        image.data[o + 1] = base + (g > 0 ? 69 * strength : 111 * strength);
        image.data[o + 2] = base + (g > 0 ? 47 * strength : 214 * strength);
        image.data[o + 3] = 255;
      }
    }
    s.putImageData(image, 0, 0);
  }

  function drawSaliency(input, grad) {
    drawSigned("saliency", input, grad);
    // Ink times gradient: how much each drawn pixel pushed the score (first order).
    const pushed = grad && input ? grad.map((row, i) => row.map((g, j) => g * input[i][j])) : null;
    drawSigned("saliency-ink", input, pushed);
  }

  function layerFigure(entry, title, scale) {
    const figure = document.createElement("figure");
    figure.className = "layer";
    const img = document.createElement("img");
    img.src = entry.image;
    img.alt = title;
    img.onload = () => { img.style.width = Math.min(340, img.naturalWidth * scale) + "px"; };
    const caption = document.createElement("figcaption");
    caption.textContent = title;
    figure.append(img, caption);
    return figure;
  }

  function describeShape(entry) {
    const s = entry.shape;
    if (entry.kind === "maps") return s[0] + " maps " + s[1] + "×" + s[2];
    return s.reduce((a, b) => a * b, 1) + " units";
  }

  function showInside(answer) {
    if (answer.blank) { showEmptyInside(); return; }
    $("stages").classList.remove("empty");
    $("inside-hint").hidden = true;
    const stages = answer.stages || {};
    setImage("stage-crop", stages.crop);
    setImage("stage-fitted", stages.fitted);
    setImage("stage-field", stages.field);
    drawSaliency(answer.input, answer.saliency);
    const filters = $("filters");
    filters.textContent = "";
    if (answer.filters && answer.filters.image) {
      const f = answer.filters;
      const what = f.kind === "filters" ? f.shape[0] + " filters " + f.shape[2] + "×" + f.shape[3]
        : Math.min(64, f.shape[1]) + " of " + f.shape[1] + " hidden units' input weights (28×28)";
      filters.append(layerFigure(f, "first layer " + f.layer + ": " + what + " (light +, dark −)",
        f.kind === "filters" ? 10 : 3));
    }
    const list = $("activations");
    list.textContent = "";
    const entries = answer.activations || [];
    entries.forEach((entry, i) => {
      const scale = entry.kind === "maps" ? Math.max(1, Math.round(8 / Math.sqrt(entry.shape[1] / 7))) : 10;
      const name = i === entries.length - 1 ? "scores (" + entry.layer + ")" : entry.layer;
      list.append(layerFigure(entry, name + " · " + describeShape(entry), scale));
    });
  }

  // ------------------------------------------------------------------ the user's digits
  function buildTruthButtons() {
    const box = $("truth-buttons");
    for (let k = 0; k < 10; k++) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(k);
      b.title = "save this drawing as a " + k + " in your digits folder";
      b.dataset.testid = "truth-" + k;
      onPress(b, () => saveDigit(k));
      box.appendChild(b);
    }
  }

  async function saveDigit(k) {
    if (state.saving) return;             // a double tap or click saves the drawing once
    if (!state.hasInk) { $("saved").textContent = "draw a digit first"; return; }
    state.saving = true;
    try {
      const body = await postPicture("/api/digits?label=" + k, await canvasBlob());
      $("saved").textContent = "saved as a " + k + " · " + body.total + " digits in your folder";
      clearPad();
      state.seq += 1;
      showEmpty();
    } catch (error) {
      $("saved").textContent = "not saved: " + error.message;
    } finally {
      state.saving = false;
    }
  }

  // ------------------------------------------------------------------ models
  async function loadModels(select) {
    const response = await fetch("/api/models");
    const body = await response.json();
    state.models = body.models || [];
    const fill = (el, withNone) => {
      const keep = el.value;
      el.textContent = "";
      if (withNone) el.append(new Option("(none)", ""));
      for (const m of state.models) {
        const label = m.source === "pretrained" ? "pretrained DeepConvNet" : m.name + " (" + m.source + ")";
        el.append(new Option(label, m.id));
      }
      if (keep && [...el.options].some((o) => o.value === keep)) el.value = keep;
    };
    fill($("model"), false);
    fill($("compare"), true);
    if (select) $("model").value = select;
    else if (!state.model && body.default) $("model").value = body.default;
    state.model = $("model").value || null;
    state.compare = $("compare").value;
    $("reading-2").classList.toggle("idle", !state.compare);
  }

  $("model").addEventListener("change", () => { state.model = $("model").value; scheduleReading(true); });
  $("compare").addEventListener("change", () => {
    state.compare = $("compare").value;
    $("reading-2").classList.toggle("idle", !state.compare);
    if (!state.compare) {
      $("prediction-2").textContent = "·";
      $("prediction-2").className = "digit empty";
      $("verdict-2").textContent = "pick a second model to read the same drawing";
      setBars($("bars-2"), null, null);
    }
    scheduleReading(true);
  });

  // ------------------------------------------------------------------ views
  for (const tab of document.querySelectorAll("nav button")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("nav button")) {
        other.setAttribute("aria-selected", String(other === tab));
        $(other.dataset.view).hidden = other !== tab;
      }
    });
  }

  // ------------------------------------------------------------------ training
  const train = { source: null, losses: [], batches: 0 };

  function drawLoss() {
    const c = $("loss-chart");
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    const pts = train.losses;
    const left = 40, bottom = c.height - 24, right = c.width - 10, top = 10;
    g.strokeStyle = "#dde1e6";
    g.fillStyle = "#66707c";
    g.font = "12px system-ui, sans-serif";
    g.beginPath(); g.moveTo(left, top); g.lineTo(left, bottom); g.lineTo(right, bottom); g.stroke();
    if (!pts.length) return;
    const maxLoss = Math.max(...pts.map((p) => p[1]), 0.1);
    const maxIt = Math.max(train.batches, pts[pts.length - 1][0], 1);
    g.fillText(maxLoss.toFixed(2), 2, top + 10);
    g.fillText("0", 26, bottom);
    g.fillText("batch " + maxIt, right - 70, c.height - 6);
    g.strokeStyle = "#2f6fd6";
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([it, loss], i) => {
      const x = left + (right - left) * it / maxIt;
      const y = bottom - (bottom - top) * loss / maxLoss;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }

  function trainEvent(event) {
    if (event.type === "begin") {
      train.losses = []; train.batches = event.batches || 0;
      $("epochs").tBodies[0].textContent = "";
    } else if (event.type === "batch") {
      train.losses.push([event.iteration, event.loss]);
      $("train-state").textContent = "running · epoch " + event.epoch + " · batch " + event.iteration +
        (train.batches ? " of " + train.batches : "") + " · loss " + event.loss.toFixed(3);
    } else if (event.type === "epoch") {
      const row = $("epochs").tBodies[0].insertRow();
      const pct = (v) => (v === undefined ? "–" : (100 * v).toFixed(2) + "%");
      for (const v of [event.epoch, event.train_loss === undefined ? "–" : event.train_loss.toFixed(4),
        pct(event.train_acc), pct(event.test_acc), event.seconds === undefined ? "–" : event.seconds.toFixed(1)]) {
        row.insertCell().textContent = String(v);
      }
    } else if (event.type === "failed") {
      $("train-state").textContent = "failed: " + event.message;
    }
    if (event.filters && event.filters.image) $("train-filters").src = event.filters.image;
    drawLoss();
  }

  function follow() {
    if (train.source) train.source.close();
    const source = new EventSource("/api/train/events");
    train.source = source;
    for (const type of ["begin", "batch", "epoch", "failed", "done"]) {
      source.addEventListener(type, (e) => trainEvent(JSON.parse(e.data)));
    }
    source.addEventListener("end", async (e) => {
      source.close();
      train.source = null;
      const status = JSON.parse(e.data);
      $("train-start").disabled = false;
      $("train-stop").disabled = true;
      if (status.state === "done") {
        // the picker first, so that "now in the model picker" is true when it is shown
        try { await loadModels(); } catch (error) { /* the text below still says how the run ended */ }
        const acc = status.test_accuracy === null || status.test_accuracy === undefined ? ""
          : " · test accuracy " + (100 * status.test_accuracy).toFixed(2) + "%";
        $("train-state").textContent = status.interrupted
          ? "stopped: " + status.run + " · its checkpoint is kept (nnscratch train --resume continues it); " +
            "only a finished run joins the model picker"
          : "finished: " + status.run + acc + (status.model_id ? " · now in the model picker" : "") +
            (status.note ? " · " + status.note : "");
      } else if (status.state === "failed") {
        $("train-state").textContent = "failed: " + (status.message || "");
      } else {
        $("train-state").textContent = "the server no longer knows this run (was it restarted?)";
      }
    });
    source.onerror = () => { /* the browser reconnects by itself; "end" closes it for good */ };
  }

  $("train-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData($("train-form"));
    const hidden = String(form.get("hidden") || "").split(/[ ,]+/).filter(Boolean).map(Number);
    const settings = { model: form.get("model"), epochs: Number(form.get("epochs")), limit: Number(form.get("limit")) };
    if (hidden.length) settings.hidden = hidden;
    let response;
    try {
      response = await fetch("/api/train", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings),
      });
    } catch (error) {
      $("train-state").textContent = "not started: cannot reach the server (" + error.message + ")";
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) { $("train-state").textContent = "not started: " + (body.detail || response.status); return; }
    $("train-state").textContent = "starting " + body.run + " …";
    $("train-start").disabled = true;
    $("train-stop").disabled = false;
    follow();
  });

  $("train-stop").addEventListener("click", async () => {
    $("train-stop").disabled = true;
    try {
      await fetch("/api/train/stop", { method: "POST" });
      $("train-state").textContent = "stopping at the end of the batch …";
    } catch (error) {
      $("train-stop").disabled = false;
      $("train-state").textContent = "could not ask the run to stop: cannot reach the server (" + error.message + ")";
    }
  });

  // ------------------------------------------------------------------ start
  async function start() {
    clearPad();
    buildBars($("bars"));
    buildBars($("bars-2"));
    buildTruthButtons();
    showEmpty();
    drawLoss();
    try {
      await loadModels();
      const status = await (await fetch("/api/train")).json();
      if (status.state === "running" || status.state === "stopping") {
        $("train-start").disabled = true;
        $("train-stop").disabled = false;
        follow();
      }
      document.body.dataset.ready = "true";
    } catch (error) {
      setStatus("cannot reach the server: " + error.message);
    }
  }
  start();
})();
