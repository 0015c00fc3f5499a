// aekit dashboard: plain JavaScript, no framework, no build step. Charts are drawn here on <canvas>/SVG.
// Every API failure shows the server's "detail" text next to the panel that asked; nothing fails silently.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const MAX_SLIDERS = 16; // more sliders than this is a wall, not a control
const POLL_MS = 2000;

const state = {
  models: [],
  model: null, // name picked in #model-select
  panel: "runs",
  loaded: {}, // panel -> model name it last loaded for, so a tab switch does not refetch
  runs: [],
  run: null,
  rows: [],
  next: 0,
  pollTimer: null,
  latent: null,
  picks: [],
};

// ---------------------------------------------------------------- API and errors

class ApiError extends Error {}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new ApiError(`cannot reach the dashboard server (${err.message}); is aekit dashboard still running?`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? formatDetail(body.detail) : text.slice(0, 300) || response.statusText;
    throw new ApiError(`${detail} (HTTP ${response.status})`);
  }
  return body;
}

// FastAPI's own validation errors carry a list of {loc, msg}; ours carry one string.
function formatDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

const postJson = (path, payload) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });

function showError(id, err) {
  const el = $(id);
  if (!err) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.textContent = err instanceof ApiError ? err.message : `unexpected error in the page: ${err.message || err}`;
  el.hidden = false;
}

function modelUrl(suffix) {
  return `/api/models/${encodeURIComponent(state.model)}/${suffix}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const fmt = (x, digits = 4) => (x === null || x === undefined || Number.isNaN(x) ? "-" : Number(x).toPrecision(digits));

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---------------------------------------------------------------- tabs and model picker

const PANELS = {
  runs: { load: loadRuns, perModel: false },
  recon: { load: loadRecon, perModel: true },
  latent: { load: loadLatent, perModel: true },
  bottleneck: { load: loadBottleneck, perModel: false },
  game: { load: loadGame, perModel: true },
  apply: { load: loadApply, perModel: false },
  anomalies: { load: loadAnomalies, perModel: true },
};

function showPanel(name) {
  state.panel = name;
  for (const key of Object.keys(PANELS)) {
    $(`panel-${key}`).hidden = key !== name;
    $(`tab-${key}`).setAttribute("aria-selected", String(key === name));
  }
  history.replaceState(null, "", `#${name}`); // a reload comes back to the same tab
  if (name === "runs") startPolling();
  else stopPolling();
  const wanted = PANELS[name].perModel ? state.model : "*";
  if (state.loaded[name] !== wanted) {
    state.loaded[name] = wanted;
    PANELS[name].load();
  }
}

async function loadModels() {
  const select = $("model-select");
  try {
    const data = await api("/api/models");
    state.models = data.models;
  } catch (err) {
    showError("global-error", err);
    return;
  }
  select.replaceChildren();
  // The per-model panels need something that encodes and decodes: autoencoders (and detectors, which wrap one).
  const usable = state.models.filter((m) => m.type === "autoencoder" || m.type === "detector");
  for (const m of usable) {
    const label = `${m.name} (${m.kind}, code ${m.code_size})`;
    select.append(el("option", { value: m.name, text: label }));
  }
  if (usable.length === 0) {
    select.append(el("option", { value: "", text: "no autoencoder found" }));
    state.model = null;
  } else {
    state.model = usable[0].name;
  }
}

function currentModel() {
  return state.models.find((m) => m.name === state.model) || null;
}

// A per-model panel with no model says how to get one instead of calling the API with an empty name.
function needModel(errorId) {
  if (state.model) return true;
  showError(
    errorId,
    new ApiError("no autoencoder found: train one with `aekit train --data digits --out m.aek` (its run goes into " +
      "runs/, the folder the dashboard reads) or start the dashboard with --model FILE"),
  );
  return false;
}

// ---------------------------------------------------------------- Runs

async function loadRuns() {
  try {
    const health = await api("/api/health");
    $("runs-dir").textContent = health.runs_dir;
    const data = await api("/api/runs");
    state.runs = data.runs;
    showError("runs-error", null);
  } catch (err) {
    showError("runs-error", err);
    return;
  }
  renderRunsList();
  if (state.runs.length === 0) {
    $("runs-list").append(el("p", { class: "muted", text: "No runs yet: train with `aekit train ... --runs DIR`." }));
    drawLossChart();
    return;
  }
  if (!state.run || !state.runs.some((r) => r.name === state.run)) selectRun(state.runs[0].name);
  else renderRunConfig();
}

function renderRunsList() {
  const list = $("runs-list");
  list.replaceChildren();
  for (const run of state.runs) {
    const last = run.last || {};
    const loss = last.val_loss ?? last.loss;
    const item = el(
      "button",
      { class: `run-item${run.name === state.run ? " selected" : ""}`, type: "button", "data-run": run.name },
      el("span", { class: "name", text: run.name }),
      el("span", { class: `badge${run.live ? " live" : ""}`, text: runState(run) }),
      el("span", { class: "meta", text: `${run.label || "no run.json"}${loss !== undefined ? ` · loss ${fmt(loss)}` : ""}` }),
    );
    item.addEventListener("click", () => selectRun(run.name));
    list.append(item);
  }
}

// "live" while it writes; else how long it trained (epochs, or a codec's steps), and whether it never finished
// (killed, failed, or a detector still busy: it writes nothing until its model).
function runState(run) {
  if (run.live) return "live";
  const t = run.trained || {};
  const n = t.steps !== undefined ? `${t.steps} steps` : t.epochs !== undefined ? `${t.epochs} epoch${t.epochs === 1 ? "" : "s"}` : "";
  if (run.finished) return n || "finished";
  if (!run.label) return n || "no metrics"; // a run from before run.json
  return n ? `unfinished, ${n}` : "unfinished";
}

function selectRun(name) {
  state.run = name;
  state.rows = [];
  state.next = 0;
  for (const item of document.querySelectorAll(".run-item")) {
    item.classList.toggle("selected", item.dataset.run === name);
  }
  $("run-title").textContent = `Loss: ${name}`;
  renderRunConfig();
  pollMetrics();
}

function renderRunConfig() {
  const run = state.runs.find((r) => r.name === state.run);
  const dl = $("run-config");
  dl.replaceChildren();
  if (!run) return;
  const entries = Object.entries(run.config || {});
  if (entries.length === 0) dl.append(el("dt", { text: "config" }), el("dd", { text: "no run.json in this run" }));
  for (const [key, value] of entries) dl.append(el("dt", { text: key }), el("dd", { text: configValue(key, value) }));
  if (run.updated) dl.append(el("dt", { text: "updated" }), el("dd", { text: new Date(run.updated * 1000).toLocaleString() }));
}

// run.json holds unix times and nulls for "the family's default"; show both as a person reads them.
function configValue(key, value) {
  if (value === null) return "default";
  if (typeof value === "number" && /started|finished|time|updated/.test(key) && value > 1e9) {
    return new Date(value * 1000).toLocaleString();
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

let polling = false;
async function pollMetrics() {
  if (!state.run || polling) return;
  polling = true;
  const run = state.run;
  try {
    const data = await api(`/api/runs/${encodeURIComponent(run)}/metrics?since=${state.next}`);
    if (run === state.run) {
      state.rows.push(...data.rows);
      state.next = data.next;
      showError("runs-error", null);
      drawLossChart();
    }
  } catch (err) {
    showError("runs-error", err);
  } finally {
    polling = false;
  }
}

let runsRefresh = 0;
function startPolling() {
  stopPolling();
  state.pollTimer = setInterval(() => {
    pollMetrics();
    // The run list (live badges, new runs) changes more slowly than a curve; refresh it every 5th tick.
    runsRefresh = (runsRefresh + 1) % 5;
    if (runsRefresh === 0) refreshRunsList();
  }, POLL_MS);
}

function stopPolling() {
  if (state.pollTimer) clearInterval(state.pollTimer);
  state.pollTimer = null;
}

async function refreshRunsList() {
  try {
    const data = await api("/api/runs");
    state.runs = data.runs;
    renderRunsList();
  } catch (err) {
    showError("runs-error", err);
  }
}

// Which columns of metrics.jsonl to draw: the losses when there are any, else every number but the clock.
function lossSeries(rows) {
  const keys = new Set();
  for (const row of rows) for (const [k, v] of Object.entries(row)) if (typeof v === "number") keys.add(k);
  const xKey = ["epoch", "step"].find((k) => keys.has(k)) || null;
  const skip = new Set([xKey, "seconds", "lr", "time"]);
  let ys = [...keys].filter((k) => !skip.has(k) && k.includes("loss"));
  if (ys.length === 0) ys = [...keys].filter((k) => !skip.has(k));
  return { xKey, ys };
}

function drawLossChart() {
  const canvas = $("loss-chart");
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const pad = { l: 60, r: 16, t: 14, b: 36 };
  ctx.clearRect(0, 0, W, H);
  ctx.font = "12px system-ui, sans-serif";
  const rows = state.rows;
  if (rows.length === 0) {
    const run = state.runs.find((r) => r.name === state.run);
    const why = !run ? "no run selected"
      : run.finished ? "no metrics.jsonl: this task trains without one (anomaly detectors, codecs)"
        : "no metrics yet: waiting for the first epoch...";
    ctx.fillStyle = "#69727d";
    ctx.fillText(why, pad.l, H / 2);
    return;
  }
  const { xKey, ys } = lossSeries(rows);
  // A log axis needs positive values; a VAE's loss (a negative log-likelihood) can go below zero.
  const positive = ys.every((k) => rows.every((r) => typeof r[k] !== "number" || r[k] > 0));
  const logScale = $("loss-log").checked && positive;
  const xs = rows.map((r, i) => (xKey ? r[xKey] : i + 1));
  const tr = (v) => (logScale ? Math.log10(Math.max(v, 1e-12)) : v);
  let lo = Infinity;
  let hi = -Infinity;
  for (const k of ys) for (const r of rows) if (typeof r[k] === "number" && Number.isFinite(r[k])) {
    lo = Math.min(lo, tr(r[k]));
    hi = Math.max(hi, tr(r[k]));
  }
  if (!Number.isFinite(lo)) return;
  if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
  const xlo = Math.min(...xs);
  const xhi = Math.max(...xs, xlo + 1);
  const px = (x) => pad.l + ((x - xlo) / (xhi - xlo)) * (W - pad.l - pad.r);
  const py = (y) => H - pad.b - ((tr(y) - lo) / (hi - lo)) * (H - pad.t - pad.b);

  // axes and ticks
  ctx.strokeStyle = "#d9dde3";
  ctx.fillStyle = "#69727d";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    const y = H - pad.b - ((v - lo) / (hi - lo)) * (H - pad.t - pad.b);
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(W - pad.r, y);
    ctx.stroke();
    ctx.fillText(fmt(logScale ? 10 ** v : v, 3), 4, y + 4);
  }
  const xticks = Math.min(6, xhi - xlo);
  for (let i = 0; i <= xticks; i++) {
    const v = Math.round(xlo + ((xhi - xlo) * i) / xticks);
    ctx.fillText(String(v), px(v) - 4, H - pad.b + 16);
  }
  ctx.fillText(xKey || "row", W / 2, H - 4);
  if ($("loss-log").checked && !positive) ctx.fillText("linear scale: some values are not positive", pad.l + 8, pad.t + 12);

  ys.forEach((key, s) => {
    ctx.strokeStyle = PALETTE[s % PALETTE.length];
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    rows.forEach((r, i) => {
      if (typeof r[key] !== "number" || !Number.isFinite(r[key])) return;
      const x = px(xs[i]);
      const y = py(r[key]);
      if (!started) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      started = true;
    });
    ctx.stroke();
    rows.forEach((r, i) => {
      if (typeof r[key] !== "number" || !Number.isFinite(r[key])) return;
      ctx.beginPath();
      ctx.arc(px(xs[i]), py(r[key]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    });
    const last = rows[rows.length - 1][key];
    ctx.fillText(`${key}${typeof last === "number" ? ` ${fmt(last, 3)}` : ""}`, W - pad.r - 150, pad.t + 14 + s * 16);
  });
}

// ---------------------------------------------------------------- Reconstructions

async function loadRecon() {
  const grid = $("recon-grid");
  grid.replaceChildren();
  $("recon-mean").textContent = "";
  if (!needModel("recon-error")) return;
  try {
    const data = await api(modelUrl("reconstructions?n=16"));
    showError("recon-error", null);
    $("recon-mean").textContent = `Mean error ${fmt(data.mean_error)}.${typicalitySummary(data.typicality, data.n_examples)}`;
    for (const item of data.items) {
      const t = item.typicality;
      const cell = el(
        "div",
        { class: t && t.atypical ? "recon-cell atypical" : "recon-cell" },
        el("div", { class: "pair" },
          el("img", { src: item.input, class: "pix", alt: `input ${item.index}`, title: "input" }),
          el("img", { src: item.output, class: "pix", alt: `reconstruction ${item.index}`, title: "reconstruction" })),
        el("div", { class: "err", text: `#${item.index} · error ${fmt(item.error, 3)}` }),
      );
      if (t) {
        cell.append(el("div", { class: "typicality", text: t.atypical ? `⚠ atypical (${typicalityText(t)})` : typicalityText(t) }));
      }
      grid.append(cell);
    }
  } catch (err) {
    showError("recon-error", err);
  }
}

// Typicality (aekit.typicality): a sample's percentile among the training data, and a warning past 99.9.
function typicalityText(t) {
  return `typicality ${Number(t.percentile).toFixed(1)}th percentile`;
}

function typicalitySummary(info, n) {
  if (!info) return "";
  if (!info.stored) return ` Typicality unknown: ${info.note}.`;
  if (!info.atypical) return ` All ${n} examples are as typical as ${info.limit}% of the training data.`;
  return ` ${info.atypical} of ${n} examples are less typical than ${info.limit}% of the training data: the model's outputs for them are unreliable.`;
}

// ---------------------------------------------------------------- Latent space

const LATENT_PAD = 24;

async function loadLatent() {
  state.latent = null;
  state.picks = [];
  $("latent-interp").replaceChildren();
  $("latent-sliders").replaceChildren();
  $("latent-decoded").hidden = true;
  $("latent-legend").replaceChildren();
  $("latent-pick").textContent = "Click a first point.";
  clearCanvas($("latent-plot"));
  if (!needModel("latent-error")) return;
  try {
    const data = await api(modelUrl("latent?n=500"));
    showError("latent-error", null);
    // Data without labels comes as labels: null; one null per point keeps the drawing code simple.
    const labels = data.labels || data.points.map(() => null);
    state.latent = { ...data, labels, model: state.model, ...latentScale(data.points) };
    $("latent-method").textContent =
      data.method === "code" ? "the 2-D code itself" : `first two principal components of the ${data.code_size}-D code`;
    drawLatent();
    renderLegend(labels);
    renderSliders();
  } catch (err) {
    showError("latent-error", err);
  }
}

function clearCanvas(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

function latentScale(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const bounds = { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
  if (bounds.x1 - bounds.x0 < 1e-9) { bounds.x0 -= 1; bounds.x1 += 1; }
  if (bounds.y1 - bounds.y0 < 1e-9) { bounds.y0 -= 1; bounds.y1 += 1; }
  return { bounds };
}

function toScreen(p) {
  const { bounds } = state.latent;
  const canvas = $("latent-plot");
  const w = canvas.width - 2 * LATENT_PAD;
  const h = canvas.height - 2 * LATENT_PAD;
  return [
    LATENT_PAD + ((p[0] - bounds.x0) / (bounds.x1 - bounds.x0)) * w,
    LATENT_PAD + (1 - (p[1] - bounds.y0) / (bounds.y1 - bounds.y0)) * h,
  ];
}

function labelColour(label) {
  if (label === null || label === undefined) return "#5b6570";
  return PALETTE[((label % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

function drawLatent(hover = -1) {
  const canvas = $("latent-plot");
  const ctx = canvas.getContext("2d");
  const lat = state.latent;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!lat) return;
  ctx.globalAlpha = 0.75;
  lat.points.forEach((p, i) => {
    const [x, y] = toScreen(p);
    ctx.fillStyle = labelColour(lat.labels[i]);
    ctx.beginPath();
    ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  // the picked pair, joined by the straight path the linear interpolation takes
  if (state.picks.length === 2) {
    const [a, b] = state.picks.map((i) => toScreen(lat.points[i]));
    ctx.strokeStyle = "#1d232b";
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(...a);
    ctx.lineTo(...b);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  for (const [n, i] of state.picks.entries()) ring(ctx, toScreen(lat.points[i]), "#1d232b", n === 0 ? "A" : "B");
  if (hover >= 0) ring(ctx, toScreen(lat.points[hover]), "#1d232b", "");
}

function ring(ctx, [x, y], colour, text) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.stroke();
  if (text) {
    ctx.fillStyle = colour;
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.fillText(text, x + 9, y - 8);
  }
}

function renderLegend(labels) {
  const legend = $("latent-legend");
  const seen = [...new Set(labels.filter((l) => l !== null && l !== undefined))].sort((a, b) => a - b);
  if (seen.length === 0) {
    legend.append(el("span", { class: "muted", text: "the data has no labels" }));
    return;
  }
  for (const label of seen) {
    const item = el("span", { text: String(label) });
    item.style.setProperty("--c", labelColour(label));
    legend.append(item);
  }
}

// Nearest point within a few pixels of the mouse, in canvas coordinates.
function pointAt(event) {
  const canvas = $("latent-plot");
  const rect = canvas.getBoundingClientRect();
  const mx = ((event.clientX - rect.left) * canvas.width) / rect.width;
  const my = ((event.clientY - rect.top) * canvas.height) / rect.height;
  let best = -1;
  let bestD = 8 * 8;
  state.latent.points.forEach((p, i) => {
    const [x, y] = toScreen(p);
    const d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  });
  return best;
}

let hovered = -1;
function onLatentMove(event) {
  if (!state.latent) return;
  const i = pointAt(event);
  const tip = $("latent-tooltip");
  if (i === hovered) {
    if (i >= 0) placeTooltip(event);
    return;
  }
  hovered = i;
  drawLatent(i);
  if (i < 0) {
    tip.hidden = true;
    return;
  }
  const index = state.latent.indices[i];
  const label = state.latent.labels[i];
  tip.querySelector("img").src = `/api/models/${encodeURIComponent(state.latent.model)}/items/${index}.png`;
  tip.querySelector("span").textContent = `#${index}${label !== null && label !== undefined ? ` · label ${label}` : ""}`;
  tip.hidden = false;
  placeTooltip(event);
}

function placeTooltip(event) {
  const tip = $("latent-tooltip");
  const rect = $("latent-plot").getBoundingClientRect();
  const x = event.clientX - rect.left;
  const y = event.clientY - rect.top;
  tip.style.left = `${x > rect.width - 110 ? x - 96 : x + 14}px`;
  tip.style.top = `${y > rect.height - 110 ? y - 106 : y + 14}px`;
}

function onLatentLeave() {
  hovered = -1;
  $("latent-tooltip").hidden = true;
  drawLatent();
}

function onLatentClick(event) {
  if (!state.latent) return;
  const i = pointAt(event);
  if (i < 0) return;
  if (state.picks.length >= 2) state.picks = [];
  state.picks.push(i);
  drawLatent(i);
  if (state.picks.length === 1) {
    $("latent-pick").textContent = `A = #${state.latent.indices[i]}. Click a second point.`;
    $("latent-interp").replaceChildren();
  } else {
    interpolate();
  }
}

async function interpolate() {
  if (state.picks.length !== 2) return;
  const [a, b] = state.picks.map((i) => state.latent.indices[i]);
  const method = document.querySelector('input[name="interp-method"]:checked').value;
  $("latent-pick").textContent = `A = #${a} → B = #${b} (${method}).`;
  try {
    const data = await postJson(`/api/models/${encodeURIComponent(state.latent.model)}/interpolate`, {
      a, b, steps: 8, method,
    });
    showError("latent-error", null);
    const strip = $("latent-interp");
    strip.replaceChildren(...data.images.map((src, k) => el("img", { src, alt: `step ${k}` })));
  } catch (err) {
    showError("latent-error", err);
  }
}

function renderSliders() {
  const box = $("latent-sliders");
  const model = currentModel();
  const lat = state.latent;
  box.replaceChildren();
  if (!model || !model.is_vae) {
    $("latent-slider-note").textContent =
      "Sliders over the code dimensions appear for a variational autoencoder (kind vae), whose code space is smooth.";
    $("latent-decoded").hidden = true;
    return;
  }
  const shown = Math.min(lat.code_size, MAX_SLIDERS);
  $("latent-slider-note").textContent =
    `Move a slider to decode live${lat.code_size > shown ? ` (first ${shown} of ${lat.code_size} dimensions; the rest stay at the mean)` : ""}.`;
  const z = lat.codes_mean.slice();
  const decode = debounce(() => decodeCode(z), 120);
  for (let d = 0; d < shown; d++) {
    const [lo, hi] = lat.code_ranges[d];
    const value = el("span", { class: "muted", text: fmt(z[d], 3) });
    const slider = el("input", {
      type: "range", min: String(lo), max: String(hi), step: String((hi - lo) / 200 || 0.01), value: String(z[d]),
      "aria-label": `code dimension ${d}`,
    });
    slider.addEventListener("input", () => {
      z[d] = Number(slider.value);
      value.textContent = fmt(z[d], 3);
      decode();
    });
    box.append(el("span", { text: `z${d}` }), slider, value);
  }
  decodeCode(z);
}

async function decodeCode(z) {
  try {
    const data = await postJson(`/api/models/${encodeURIComponent(state.latent.model)}/decode`, { z });
    showError("latent-error", null);
    const img = $("latent-decoded");
    img.src = data.image;
    img.hidden = false;
  } catch (err) {
    showError("latent-error", err);
  }
}

// ---------------------------------------------------------------- Bottleneck

let compareResults = [];

async function loadBottleneck() {
  try {
    const data = await api("/api/compare");
    compareResults = data.results;
    showError("bottleneck-error", null);
  } catch (err) {
    showError("bottleneck-error", err);
    return;
  }
  const select = $("bottleneck-select");
  select.replaceChildren(...compareResults.map((r, i) => el("option", { value: String(i), text: `${r.name} (${r.data})` })));
  $("bottleneck-pick").hidden = compareResults.length < 2;
  if (compareResults.length === 0) {
    $("bottleneck-chart").replaceChildren(el("p", {
      class: "muted",
      text: "No comparisons in the runs directory yet. Run `aekit compare --data digits --out RUNS/compare-digits` " +
        "and reload this tab.",
    }));
    $("bottleneck-examples").replaceChildren();
    return;
  }
  renderBottleneck(compareResults[0]);
}

// The knee: the interior point of the error curve (over log2 code size) farthest below the chord from its
// first to its last point (kneedle, Satopaa et al. 2011); sizes left of it are too small, right of it too
// large. A curve with no point below its chord has not levelled off yet, so its largest size is the knee.
function kneeIndex(sizes, errors) {
  const n = sizes.length;
  if (n < 3) return n - 1;
  const xs = sizes.map((s) => Math.log2(s));
  const ylo = Math.min(...errors);
  const yhi = Math.max(...errors);
  const ny = errors.map((e) => (yhi > ylo ? (e - ylo) / (yhi - ylo) : 0));
  const nx = xs.map((x) => (x - xs[0]) / (xs[n - 1] - xs[0] || 1));
  let best = n - 1;
  let bestGap = 1e-9;
  for (let i = 1; i < n - 1; i++) {
    const gap = ny[0] + (ny[n - 1] - ny[0]) * nx[i] - ny[i];
    if (gap > bestGap) { bestGap = gap; best = i; }
  }
  return best;
}

function verdict(i, knee) {
  if (i < knee) return { text: "too small", cls: "too-small" };
  if (i === knee) return { text: "just right", cls: "just-right" };
  return { text: "too large", cls: "too-large" };
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function renderBottleneck(result) {
  const sizes = result.code_sizes;
  const knee = kneeIndex(sizes, result.ae_error);
  const W = 720;
  const H = 340;
  const pad = { l: 64, r: 20, t: 16, b: 44 };
  const all = [...result.ae_error, ...result.pca_error].filter((v) => Number.isFinite(v));
  const ylo = 0;
  const yhi = Math.max(...all) * 1.05 || 1;
  const lx = sizes.map((s) => Math.log2(s));
  const xlo = Math.min(...lx);
  const xhi = Math.max(...lx) > xlo ? Math.max(...lx) : xlo + 1;
  const px = (s) => pad.l + ((Math.log2(s) - xlo) / (xhi - xlo)) * (W - pad.l - pad.r);
  const py = (v) => H - pad.b - ((v - ylo) / (yhi - ylo)) * (H - pad.t - pad.b);

  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "error against code size" });
  for (let i = 0; i <= 4; i++) {
    const v = ylo + ((yhi - ylo) * i) / 4;
    root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: py(v), y2: py(v), stroke: "#e3e6ea" }));
    root.append(svg("text", { x: pad.l - 6, y: py(v) + 4, "text-anchor": "end" }, fmt(v, 3)));
  }
  for (const s of sizes) root.append(svg("text", { x: px(s), y: H - pad.b + 18, "text-anchor": "middle" }, String(s)));
  root.append(svg("text", { x: (W + pad.l) / 2, y: H - 6, "text-anchor": "middle" }, "code size"));
  root.append(svg("text", { x: 14, y: H / 2, transform: `rotate(-90 14 ${H / 2})`, "text-anchor": "middle" },
    "test reconstruction error (MSE)"));
  // the knee
  const kx = px(sizes[knee]);
  root.append(svg("line", { x1: kx, x2: kx, y1: pad.t, y2: H - pad.b, stroke: "#1b7a35", "stroke-dasharray": "5 4" }));
  root.append(svg("text", { x: kx + 6, y: pad.t + 12, style: "fill:#1b7a35" }, `knee: ${sizes[knee]}`));

  const series = [["autoencoder", result.ae_error, "var(--ae)"], ["PCA", result.pca_error, "var(--pca)"]];
  series.forEach(([name, errors, colour], k) => {
    const pts = sizes.map((s, i) => [px(s), py(errors[i])]).filter((p) => Number.isFinite(p[1]));
    root.append(svg("polyline", {
      points: pts.map((p) => p.join(",")).join(" "), fill: "none", style: `stroke:${colour}`, "stroke-width": 2,
    }));
    for (const [x, y] of pts) root.append(svg("circle", { cx: x, cy: y, r: 4, style: `fill:${colour}` }));
    const ly = pad.t + 8 + k * 18;
    root.append(svg("rect", { x: W - pad.r - 120, y: ly - 8, width: 12, height: 4, style: `fill:${colour}` }));
    root.append(svg("text", { x: W - pad.r - 102, y: ly - 2 }, name));
  });
  $("bottleneck-chart").replaceChildren(root);
  renderBottleneckExamples(result, knee);
}

function renderBottleneckExamples(result, knee) {
  const box = $("bottleneck-examples");
  box.replaceChildren(el("h3", { text: "Reconstructions at each code size" }));
  if (!result.examples) {
    box.append(el("p", {
      class: "muted",
      text: "This comparison has no examples.npz (it predates them): run aekit compare again to see reconstructions.",
    }));
    return;
  }
  const row = el("div", { class: "examples" });
  const strip = (label, images) =>
    [el("div", { class: "rowlabel", text: label }),
      el("div", { class: "imgs" }, ...images.map((src) => el("img", { src, alt: label })))];
  row.append(el("div", { class: "size-col" }, el("h4", { text: "input" }), el("div", { class: "verdict", text: "test images" }),
    ...strip("original", result.examples.inputs)));
  result.code_sizes.forEach((size, i) => {
    const recon = result.examples.sizes[String(size)];
    if (!recon) return;
    const v = verdict(i, knee);
    row.append(el(
      "div",
      { class: `size-col ${v.cls}`, "data-size": String(size) },
      el("h4", { text: `code ${size}` }),
      el("div", { class: "verdict", text: `${v.text} · AE ${fmt(result.ae_error[i], 3)}` }),
      ...strip("autoencoder", recon.ae),
      ...strip("PCA", recon.pca),
    ));
  });
  box.append(row);
}

// ---------------------------------------------------------------- Game

const game = { drawing: false, last: null, inFlight: false, queued: false, lastSent: 0, upload: null, model: null };
const GAME_THROTTLE_MS = 250;

function loadGame() {
  showError("game-error-msg", null);
  game.model = state.model;
  for (const id of ["game-input", "game-output", "game-noisy", "game-denoised"]) $(id).removeAttribute("src");
  $("game-error").textContent = "-";
  $("game-anomaly").textContent = "-";
  $("game-percentile").textContent = "";
  showGameTypicality(null);
  $("game-anomaly-bar").style.width = "0";
  clearCanvas($("game-code"));
  if (!needModel("game-error-msg")) return;
  const model = currentModel();
  if (model && !model.is_image) {
    showError("game-error-msg", new ApiError(`model ${model.name} works on tables, not images: pick an image model`));
  }
  // A fresh canvas the first time; later visits keep the drawing and send it through the new model.
  if (!game.ready) {
    resetCanvas();
    game.ready = true;
  } else if (!canvasIsEmpty()) {
    sendGame();
  }
}

function resetCanvas() {
  const canvas = $("game-canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  game.upload = null;
  game.dirty = false;
}

function canvasIsEmpty() {
  return !game.dirty && !game.upload;
}

function canvasPoint(event) {
  const canvas = $("game-canvas");
  const rect = canvas.getBoundingClientRect();
  return [((event.clientX - rect.left) * canvas.width) / rect.width, ((event.clientY - rect.top) * canvas.height) / rect.height];
}

function strokeTo(point) {
  const ctx = $("game-canvas").getContext("2d");
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = Number($("game-pen").value);
  ctx.beginPath();
  if (game.last) {
    ctx.moveTo(...game.last);
    ctx.lineTo(...point);
    ctx.stroke();
  } else {
    ctx.arc(point[0], point[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  }
  game.last = point;
  game.dirty = true;
  // Once drawn on, the canvas (upload plus strokes) is what the model sees.
  game.upload = null;
}

function onPointerDown(event) {
  event.preventDefault();
  $("game-canvas").setPointerCapture(event.pointerId);
  game.drawing = true;
  game.last = null;
  strokeTo(canvasPoint(event));
}

function onPointerMove(event) {
  if (!game.drawing) return;
  event.preventDefault();
  strokeTo(canvasPoint(event));
  // While the pen moves, send at most every GAME_THROTTLE_MS, and never two requests at once.
  if (Date.now() - game.lastSent > GAME_THROTTLE_MS) sendGame();
}

function onPointerUp() {
  if (!game.drawing) return;
  game.drawing = false;
  game.last = null;
  sendGame();
}

function noiseLevel() {
  return $("game-noise-on").checked ? Number($("game-noise").value) / 100 : 0;
}

async function sendGame() {
  if (!state.model) return;
  if (game.inFlight) {
    game.queued = true; // the latest drawing goes out as soon as the current answer is in
    return;
  }
  game.inFlight = true;
  game.lastSent = Date.now();
  const image = game.upload || $("game-canvas").toDataURL("image/png");
  const noise = noiseLevel();
  try {
    const data = await postJson(modelUrl("game"), { image, noise });
    showError("game-error-msg", null);
    showGameResult(data, noise);
  } catch (err) {
    showError("game-error-msg", err);
  } finally {
    game.inFlight = false;
    if (game.queued) {
      game.queued = false;
      sendGame();
    }
  }
}

function showGameResult(data, noise) {
  $("game-input").src = data.input;
  $("game-output").src = data.output;
  $("game-error").textContent = fmt(data.error, 3);
  const anomaly = data.anomaly || {};
  $("game-anomaly").textContent = fmt(anomaly.score, 3);
  const pct = Number(anomaly.percentile);
  $("game-anomaly-bar").style.width = `${Number.isFinite(pct) ? Math.max(0, Math.min(100, pct)) : 0}%`;
  $("game-percentile").textContent = Number.isFinite(pct)
    ? `worse than ${pct.toFixed(0)}% of the test images` : "";
  showGameTypicality(data.typicality);
  drawCode(data.code);
  const noisy = noise > 0 && data.noisy;
  $("game-noise-row").hidden = !noisy;
  if (noisy) {
    $("game-noisy").src = data.noisy;
    $("game-denoised").src = data.denoised || data.output;
  }
}

function showGameTypicality(info) {
  const box = $("game-typicality");
  const sample = info && info.sample;
  box.hidden = !info;
  box.classList.toggle("warn", Boolean(sample && sample.atypical));
  if (!info) return;
  if (!sample) {
    box.textContent = `Typicality unknown: ${info.note}.`;
  } else if (sample.atypical) {
    box.textContent = `⚠ Less typical than ${info.limit}% of the training data (${typicalityText(sample)}): the model has never seen anything like this, so its reconstruction says little.`;
  } else {
    box.textContent = `Typicality: ${Number(sample.percentile).toFixed(1)}th percentile of the training data.`;
  }
}

// The code as bars around zero; the scale only grows during a session so bars stay comparable while drawing.
let codeScale = 1e-6;
function drawCode(code) {
  const canvas = $("game-code");
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  if (!code || code.length === 0) return;
  codeScale = Math.max(codeScale, ...code.map((c) => Math.abs(c)));
  const mid = H / 2;
  const bw = W / code.length;
  ctx.strokeStyle = "#d9dde3";
  ctx.beginPath();
  ctx.moveTo(0, mid);
  ctx.lineTo(W, mid);
  ctx.stroke();
  code.forEach((c, i) => {
    const h = (c / codeScale) * (mid - 6);
    ctx.fillStyle = c >= 0 ? "#2f6fdd" : "#e07b24";
    ctx.fillRect(i * bw + Math.max(1, bw * 0.1), c >= 0 ? mid - h : mid, Math.max(1, bw * 0.8), Math.abs(h));
  });
  if (code.length <= 8) { // more labels than this overlap
    ctx.fillStyle = "#69727d";
    ctx.font = "10px system-ui, sans-serif";
    code.forEach((c, i) => ctx.fillText(c.toFixed(1), i * bw + 2, c >= 0 ? H - 3 : 10));
  }
}

function onGameUpload(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const reader = new FileReader();
  reader.onerror = () => showError("game-error-msg", new ApiError(`cannot read ${file.name}: ${reader.error}`));
  reader.onload = () => {
    const img = new Image();
    img.onerror = () => showError("game-error-msg", new ApiError(`${file.name} is not an image the browser can open`));
    img.onload = () => {
      resetCanvas();
      const canvas = $("game-canvas");
      const scale = Math.min(canvas.width / img.width, canvas.height / img.height);
      const w = img.width * scale;
      const h = img.height * scale;
      canvas.getContext("2d").drawImage(img, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
      // The file itself goes to the model (it decides whether dark-on-light needs inverting).
      game.upload = reader.result;
      sendGame();
    };
    img.src = reader.result;
  };
  reader.readAsDataURL(file);
}

// ---------------------------------------------------------------- Anomalies (a detector's explanations)

async function loadAnomalies() {
  const grid = $("anomalies-grid");
  grid.replaceChildren();
  $("anomalies-summary").textContent = "";
  if (!needModel("anomalies-error")) return;
  try {
    const data = await api(modelUrl("explanations?n=12"));
    showError("anomalies-error", null);
    $("anomalies-summary").textContent =
      `${data.n_flagged} of ${data.n_examples} examples flagged (threshold ${fmt(data.threshold, 3)})` +
      (data.n_flagged > data.items.length ? `; the ${data.items.length} highest shown.` : ".");
    for (const item of data.items) {
      const cell = el("div", { class: "recon-cell anomaly-cell" });
      if (item.heatmap) {
        cell.append(el("div", { class: "pair" },
          el("img", { src: item.input, class: "pix", alt: `input ${item.index}`, title: "input" }),
          el("img", { src: item.output, class: "pix", alt: `reconstruction ${item.index}`, title: "reconstruction" }),
          el("img", { src: item.heatmap, class: "pix", alt: `heat-map ${item.index}`, title: "where the error sits" })));
      }
      cell.append(el("div", { class: "err", text: `#${item.index} · score ${fmt(item.score, 3)}` }));
      if (item.top) {
        const list = el("ol", { class: "top-columns" });
        for (const t of item.top) list.append(el("li", { text: `column ${t.column}: ${(100 * t.share).toFixed(0)}%` }));
        cell.append(list);
      }
      grid.append(cell);
    }
  } catch (err) {
    showError("anomalies-error", err);
  }
}

// ---------------------------------------------------------------- Applications

function loadApply() {
  // Start on the task there is a model for: most runs folders hold no restoration model, but "photo" is built in.
  if (!state.models.some((m) => m.type === "restore")) $("apply-task").value = "compress";
  fillApplyModels();
}

const APPLY_TASKS = {
  restore: { types: ["restore"], extra: [], quality: false },
  compress: { types: ["codec"], extra: ["photo"], quality: true },
};

function fillApplyModels() {
  const task = APPLY_TASKS[$("apply-task").value];
  const select = $("apply-model");
  const previous = select.value;
  const names = [...state.models.filter((m) => task.types.includes(m.type)).map((m) => m.name), ...task.extra];
  select.replaceChildren(...names.map((n) => el("option", { value: n, text: n === "photo" ? "photo (built-in codec)" : n })));
  if (names.length === 0) {
    select.append(el("option", { value: "", text: "none: train one with aekit train --task denoise" }));
  }
  if (names.includes(previous)) select.value = previous;
  $("apply-quality-wrap").hidden = !task.quality;
}

async function runApply(event) {
  event.preventDefault();
  const file = $("apply-file").files[0];
  const taskName = $("apply-task").value;
  const model = $("apply-model").value;
  const result = $("apply-result");
  if (!file) {
    showError("apply-error", new ApiError("choose an image file first"));
    return;
  }
  if (!model) {
    showError("apply-error", new ApiError(`no model for ${taskName}: start the dashboard with one (--model FILE)`));
    return;
  }
  const form = new FormData();
  form.append("file", file);
  form.append("model", model);
  if (APPLY_TASKS[taskName].quality) form.append("quality", $("apply-quality").value);
  $("apply-run").disabled = true;
  result.replaceChildren(el("p", { class: "muted", text: `running ${taskName}...` }));
  try {
    const data = await api(`/api/apply/${taskName}`, { method: "POST", body: form });
    showError("apply-error", null);
    if (taskName === "restore") showRestore(data);
    else showCompress(data, `aekit codec ${model}, quality ${$("apply-quality").value}`);
  } catch (err) {
    result.replaceChildren();
    showError("apply-error", err);
  } finally {
    $("apply-run").disabled = false;
  }
}

function card(title, src, stats, cls = "") {
  return el("div", { class: `result-card ${cls}` }, el("h3", { text: title }), el("img", { src, alt: title }),
    el("div", { class: "stats" }, ...stats));
}

function showRestore(data) {
  $("apply-result").replaceChildren(
    card("input", data.input, [el("span", { text: `${data.width} × ${data.height}` })]),
    card("restored", data.output, [el("span", { text: "model output" })], "ours"),
    imageTypicality(data.typicality),
  );
}

// One uploaded image's typicality for a restorer or codec: a warning when the model never saw its like.
function imageTypicality(info) {
  const sample = info && info.sample;
  const box = el("p", { id: "apply-typicality", class: `typicality${sample && sample.atypical ? " warn" : ""}` });
  if (!info) return box;
  if (!sample) box.textContent = `Typicality unknown: ${info.note}.`;
  else if (sample.atypical) box.textContent = `⚠ Less typical than ${info.limit}% of the model's training images (${typicalityText(sample)}): its output for this image is unreliable.`;
  else box.textContent = `Typicality: ${Number(sample.percentile).toFixed(1)}th percentile of the model's training images.`;
  return box;
}

function showCompress(data, ours) {
  const rows = [["ours", ours, data.ours], ["jpeg", "JPEG", data.jpeg], ["webp", "WebP", data.webp]];
  $("apply-result").replaceChildren(...rows.map(([key, title, r]) => card(
    key !== "ours" && r.quality !== undefined ? `${title} (quality ${r.quality})` : title,
    r.image,
    [el("strong", { text: `${r.bytes.toLocaleString()} bytes` }), el("br"), el("span", { text: `PSNR ${fmt(r.psnr, 4)} dB` })],
    key === "ours" ? "ours" : key,
  )), imageTypicality(data.typicality));
}

// ---------------------------------------------------------------- start

function wire() {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => showPanel(button.dataset.panel));
  }
  $("model-select").addEventListener("change", (e) => {
    state.model = e.target.value || null;
    const name = state.panel;
    if (PANELS[name].perModel) {
      state.loaded[name] = state.model;
      PANELS[name].load();
    }
  });
  $("loss-log").addEventListener("change", drawLossChart);

  const plot = $("latent-plot");
  plot.addEventListener("mousemove", onLatentMove);
  plot.addEventListener("mouseleave", onLatentLeave);
  plot.addEventListener("click", onLatentClick);
  for (const radio of document.querySelectorAll('input[name="interp-method"]')) radio.addEventListener("change", interpolate);
  $("latent-clear").addEventListener("click", () => {
    state.picks = [];
    $("latent-interp").replaceChildren();
    $("latent-pick").textContent = "Click a first point.";
    drawLatent();
  });

  $("bottleneck-select").addEventListener("change", (e) => renderBottleneck(compareResults[Number(e.target.value)]));

  const canvas = $("game-canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", onPointerUp);
  $("game-clear").addEventListener("click", () => {
    resetCanvas();
    sendGame();
  });
  $("game-upload").addEventListener("change", onGameUpload);
  $("game-noise-on").addEventListener("change", (e) => {
    $("game-noise").disabled = !e.target.checked;
    if (!canvasIsEmpty()) sendGame();
  });
  const noiseChanged = debounce(() => { if (!canvasIsEmpty()) sendGame(); }, 150);
  $("game-noise").addEventListener("input", (e) => {
    $("game-noise-value").textContent = (Number(e.target.value) / 100).toFixed(2);
    noiseChanged();
  });

  $("apply-task").addEventListener("change", fillApplyModels);
  $("apply-quality").addEventListener("input", (e) => { $("apply-quality-value").textContent = e.target.value; });
  $("apply-form").addEventListener("submit", runApply);
}

async function start() {
  wire();
  await loadModels();
  const wanted = location.hash.slice(1);
  showPanel(PANELS[wanted] ? wanted : "runs");
}

document.addEventListener("DOMContentLoaded", start);
