// The gankit drawing page: draw on a canvas, send it to POST translate, show the result.
// Plain JavaScript with no dependencies, so the page works offline.
"use strict";

(() => {
  const PAPER = "#ffffff";
  const DEBOUNCE_MS = 250;
  const UNDO_LIMIT = 40;

  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const output = $("output");
  const status = $("status");
  const width = $("width");
  const download = $("download");

  const state = {
    tool: "pen",
    undo: [],
    drawing: null, // {x, y} of the last point while a stroke is in progress
    timer: null,
    busy: false,
    again: false, // the drawing changed while a request was running
    outputUrl: null,
  };

  function setStatus(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function paper() {
    ctx.save();
    ctx.globalCompositeOperation = "source-over";
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.restore();
  }

  // --- undo ------------------------------------------------------------------------------
  function remember() {
    state.undo.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (state.undo.length > UNDO_LIMIT) state.undo.shift();
    $("undo").disabled = false;
  }

  function undo() {
    const last = state.undo.pop();
    if (!last) return;
    ctx.putImageData(last, 0, 0);
    $("undo").disabled = state.undo.length === 0;
    changed();
  }

  // --- drawing ---------------------------------------------------------------------------
  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * canvas.height) / rect.height,
    };
  }

  function stroke(from, to) {
    ctx.strokeStyle = state.tool === "eraser" ? PAPER : $("color").value;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = Number(width.value) * (state.tool === "eraser" ? 3 : 1);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (from.x === to.x && from.y === to.y) {
      ctx.beginPath();
      ctx.arc(to.x, to.y, ctx.lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    remember();
    state.drawing = point(event);
    stroke(state.drawing, state.drawing);
    clearTimeout(state.timer); // no update in the middle of a stroke
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const next = point(e);
      stroke(state.drawing, next);
      state.drawing = next;
    }
  });

  function endStroke() {
    if (!state.drawing) return;
    state.drawing = null;
    changed();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  // --- tools -----------------------------------------------------------------------------
  function selectTool(name) {
    state.tool = name;
    for (const id of ["pen", "eraser"]) {
      $(id).classList.toggle("active", id === name);
      $(id).setAttribute("aria-pressed", String(id === name));
    }
  }
  $("pen").addEventListener("click", () => selectTool("pen"));
  $("eraser").addEventListener("click", () => selectTool("eraser"));
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => {
    remember();
    paper();
    changed();
  });
  width.addEventListener("input", () => { $("width-value").textContent = width.value; });
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "z") {
      event.preventDefault();
      undo();
    }
  });

  $("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      const bitmap = await createImageBitmap(file);
      remember();
      paper();
      // Fit the whole image inside the canvas, centred on white.
      const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      ctx.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
      bitmap.close();
      translateNow();
    } catch (err) {
      setStatus(`cannot read ${file.name}: ${err.message || err}`, true);
    }
  });

  // --- translation -----------------------------------------------------------------------
  function changed() {
    if (!$("auto").checked) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(translateNow, DEBOUNCE_MS);
  }

  function canvasBlob() {
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  async function translateNow() {
    clearTimeout(state.timer);
    if (state.busy) {
      state.again = true; // send the newest drawing when the running request is done
      return;
    }
    state.busy = true;
    state.again = false;
    const started = performance.now();
    setStatus("translating…");
    try {
      const form = new FormData();
      form.append("image", await canvasBlob(), "drawing.png");
      const response = await fetch("translate", { method: "POST", body: form });
      if (!response.ok) {
        let detail = response.statusText;
        try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
        throw new Error(`${response.status}: ${detail}`);
      }
      await show(await response.blob());
      const ms = Math.round(performance.now() - started);
      const batch = response.headers.get("X-Gankit-Batch-Size");
      setStatus(`done in ${ms} ms${batch && batch !== "1" ? ` (batched with ${batch - 1})` : ""}`);
    } catch (err) {
      setStatus(`translation failed: ${err.message || err}`, true);
    } finally {
      state.busy = false;
      if (state.again) translateNow();
    }
  }

  function show(blob) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(blob);
      output.onload = () => {
        if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
        state.outputUrl = url;
        download.href = url;
        download.classList.remove("disabled");
        download.setAttribute("aria-disabled", "false");
        output.dataset.count = String(Number(output.dataset.count) + 1);
        resolve();
      };
      output.onerror = () => reject(new Error("the server's answer is not an image"));
      output.src = url;
    });
  }

  $("translate").addEventListener("click", translateNow);

  // --- start -----------------------------------------------------------------------------
  async function start() {
    let info;
    try {
      const response = await fetch("info");
      if (!response.ok) throw new Error(`${response.status}`);
      info = await response.json();
    } catch (err) {
      setStatus(`cannot reach the server: ${err.message || err}`, true);
      return;
    }
    const size = info.image_size || 256;
    canvas.width = size;
    canvas.height = size;
    width.max = String(Math.max(4, Math.round(size / 8)));
    width.value = String(Math.max(1, Math.round(size / 64)));
    $("width-value").textContent = width.value;
    const direction = info.reverse ? " (reverse)" : "";
    $("model-info").textContent =
      `${info.model}${direction} · ${size}×${size} · ${info.channel_order.input} → ` +
      `${info.channel_order.output} · ${info.inference_mode} mode · ${info.backend}`;
    document.title = `gankit: ${info.model}`;
    paper();
    document.body.dataset.ready = "true";
    translateNow(); // the blank canvas's output, so a change is easy to see
  }

  start();
})();
