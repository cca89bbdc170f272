// FloriSense web page: pick or drop photos, send them to /predict, show a verdict card each.
// Photos are sent as they are (no downscaling in the browser): the model's own preprocessing
// decides, so the page and every other client get the same answer for the same file.
// Each verdict card can overlay the heat map the model answers (params.explain): where it sees the
// dandelion, drawn on a canvas over the photo as sent. Maps cost the model extra work, so they are
// asked for lazily: one request per card, the first time its toggle is pressed.
"use strict";

const MAX_FILE_BYTES = 20 * 1000 * 1000; // the model refuses larger images
const MAX_REQUEST_BYTES = 20 * 1000 * 1000; // base64 per request, under nginx's body limit
const MAX_PHOTOS_PER_REQUEST = 16;
const ACCEPTED = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];
const EXTENSIONS = /\.(jpe?g|png|webp|gif|bmp)$/i;

const TEXT = {
  fr: {
    langSwitch: "English", langHint: "Passer l'interface en anglais",
    intro: "Pissenlit ou herbe ? Choisissez une ou plusieurs photos, puis demandez le verdict.",
    pickTitle: "Photos", dropHint: "Déposez vos photos ici", pick: "Choisir des photos",
    camera: "Prendre une photo", formats: "JPEG, PNG, WebP, GIF ou BMP, 20 Mo au plus par photo.",
    predict: "Obtenir le verdict", clear: "Tout effacer", results: "Verdicts",
    footer: "Modèle servi par MLflow ; vos photos ne sont pas conservées.",
    remove: "Retirer", labels: { dandelion: "Pissenlit", grass: "Herbe" },
    confidence: "Confiance", notImage: "ce fichier n'est pas une image prise en charge (JPEG, PNG, WebP, GIF ou BMP)",
    tooLarge: (mb) => `photo trop lourde (${mb} Mo ; 20 Mo au plus)`,
    refused: "Image refusée", sending: (n) => `Analyse de ${n} photo(s)…`,
    done: (n) => `${n} verdict(s) prêt(s).`, nothing: "Ajoutez d'abord une photo valide.",
    down: "Le serveur du modèle ne répond pas. Réessayez dans un instant.",
    busy: "Trop de demandes : patientez quelques secondes.", error: "Erreur du serveur",
    heatmapToggle: "Où le modèle voit-il le pissenlit ?",
    heatmapLegend: "Indices de pissenlit", heatmapLow: "faible", heatmapHigh: "forte",
    heatmapMissing: "Cette version du modèle ne fournit pas de carte de chaleur.",
    heatmapLoading: "Calcul de la carte…",
    heatmapAlt: (where) => `Carte de chaleur sur la photo : plus la couleur tire vers le jaune, plus le modèle y voit de signes de pissenlit. ${where}`,
    heatmapPeak: (place) => `Indices les plus forts : ${place}.`, heatmapNone: "Aucun indice de pissenlit sur cette photo.",
    thirds: { rows: ["en haut", "", "en bas"], columns: ["à gauche", "", "à droite"], centre: "au centre" },
  },
  en: {
    langSwitch: "Français", langHint: "Switch the page to French",
    intro: "Dandelion or grass? Choose one or more photos, then ask for the verdict.",
    pickTitle: "Photos", dropHint: "Drop your photos here", pick: "Choose photos",
    camera: "Take a photo", formats: "JPEG, PNG, WebP, GIF or BMP, 20 MB at most per photo.",
    predict: "Get the verdict", clear: "Clear all", results: "Verdicts",
    footer: "Model served by MLflow; your photos are not kept.",
    remove: "Remove", labels: { dandelion: "Dandelion", grass: "Grass" },
    confidence: "Confidence", notImage: "this file is not a supported image (JPEG, PNG, WebP, GIF or BMP)",
    tooLarge: (mb) => `photo too large (${mb} MB; 20 MB at most)`,
    refused: "Image refused", sending: (n) => `Analysing ${n} photo(s)…`,
    done: (n) => `${n} verdict(s) ready.`, nothing: "Add a valid photo first.",
    down: "The model server is not answering. Try again in a moment.",
    busy: "Too many requests: wait a few seconds.", error: "Server error",
    heatmapToggle: "Where does the model see the dandelion?",
    heatmapLegend: "Evidence of dandelion", heatmapLow: "low", heatmapHigh: "strong",
    heatmapMissing: "This model version does not provide heat maps.",
    heatmapLoading: "Drawing the map…",
    heatmapAlt: (where) => `Heat map over the photo: the yellower the colour, the more evidence of dandelion the model sees there. ${where}`,
    heatmapPeak: (place) => `Strongest evidence: ${place}.`, heatmapNone: "No evidence of dandelion in this photo.",
    thirds: { rows: ["top", "", "bottom"], columns: ["left", "", "right"], centre: "centre" },
  },
};

let lang = "fr";
let photos = []; // {id, file, url, problem}
let nextId = 1;
const $ = (id) => document.getElementById(id);
const t = () => TEXT[lang];

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    const value = t()[el.dataset.i18n];
    if (typeof value === "string") el.textContent = value;
  });
  $("lang-switch").textContent = t().langSwitch;
  renderPreviews();
}

function problemOf(file) {
  const typed = file.type ? ACCEPTED.includes(file.type) : EXTENSIONS.test(file.name);
  if (!typed) return t().notImage;
  if (file.size > MAX_FILE_BYTES) return t().tooLarge((file.size / 1e6).toFixed(1));
  return null;
}

function addFiles(fileList) {
  for (const file of fileList) {
    photos.push({ id: nextId++, file, url: URL.createObjectURL(file) });
  }
  renderPreviews();
}

function renderPreviews() {
  const list = $("previews");
  list.replaceChildren();
  for (const photo of photos) {
    const problem = problemOf(photo.file);
    const item = document.createElement("li");
    item.className = problem ? "preview invalid" : "preview";
    if (!problem) {
      const img = document.createElement("img");
      img.src = photo.url;
      img.alt = photo.file.name;
      item.append(img);
    }
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = photo.file.name;
    item.append(name);
    if (problem) {
      const message = document.createElement("span");
      message.className = "problem";
      message.textContent = problem;
      item.append(message);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link";
    remove.textContent = t().remove;
    remove.setAttribute("aria-label", `${t().remove} ${photo.file.name}`);
    remove.addEventListener("click", () => {
      URL.revokeObjectURL(photo.url);
      photos = photos.filter((p) => p.id !== photo.id);
      renderPreviews();
    });
    item.append(remove);
    list.append(item);
  }
  $("predict").disabled = !photos.some((p) => !problemOf(p.file));
  $("clear").disabled = photos.length === 0;
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// Groups of photos small enough for one request each, in the user's order.
function batches(items) {
  const groups = [];
  let current = [];
  let size = 0;
  for (const item of items) {
    if (current.length && (size + item.b64.length > MAX_REQUEST_BYTES || current.length >= MAX_PHOTOS_PER_REQUEST)) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += item.b64.length;
  }
  if (current.length) groups.push(current);
  return groups;
}

// A /predict refusal that names `explain`: the served version cannot draw heat maps.
class ExplainRefused extends Error {}

// Verdicts are asked for without heat maps; a card asks for its own map when its toggle is first
// pressed. Once the served model refuses `explain` (a network that cannot draw maps), the page
// remembers it for the visit: every toggle says the map is unavailable. Versions registered before
// heat maps ignore the param and answer a row without a grid: that card says the same.
let explainable = true;

async function post(group, explain) {
  const body = { dataframe_records: group.map((item) => ({ image: item.b64 })) };
  if (explain) body.params = { explain: true };
  let response;
  try {
    response = await fetch("/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (networkError) {
    throw new Error(t().down);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (notJson) {
    payload = null;
  }
  const message = (payload && payload.error) || "";
  if (response.status === 502 || response.status === 503 || response.status === 504) throw new Error(t().down);
  if (response.status === 429) throw new Error(t().busy);
  if (explain && response.status === 400 && /explain|heat map/i.test(String(message))) throw new ExplainRefused(message);
  if (!response.ok || !payload || !Array.isArray(payload.predictions)) {
    throw new Error(`${t().error} (${response.status}) : ${message}`);
  }
  return payload.predictions;
}

function send(group) {
  return post(group, false);
}

// ---- Heat maps: the model's evidence for "dandelion", a grid of [0, 1] over the photo as sent.

// Colour scale (viridis stops): dark violet for no evidence, through teal, to yellow for the
// strongest; it stays readable with the common colour-vision deficiencies and in greyscale.
const SCALE = [
  [0.0, [68, 1, 84]],
  [0.25, [59, 82, 139]],
  [0.5, [33, 145, 140]],
  [0.75, [94, 201, 98]],
  [1.0, [253, 231, 37]],
];
// Opacity grows with the evidence, so the photo stays visible where the model sees nothing.
const ALPHA_LOW = 0.3;
const ALPHA_HIGH = 0.75;
const LEGEND_STEPS = 256; // the legend bar's width in canvas pixels: one column per step

function colourAt(value) {
  const v = Math.min(Math.max(value, 0), 1);
  let upper = 1;
  while (upper < SCALE.length - 1 && SCALE[upper][0] < v) upper++;
  const [v0, c0] = SCALE[upper - 1];
  const [v1, c1] = SCALE[upper];
  const f = (v - v0) / (v1 - v0);
  const alpha = ALPHA_LOW + (ALPHA_HIGH - ALPHA_LOW) * v;
  return [0, 1, 2].map((i) => Math.round(c0[i] + (c1[i] - c0[i]) * f)).concat(Math.round(alpha * 255));
}

// The row's grid, or null when the answer has none (error rows, older model versions).
function heatmapGrid(prediction) {
  const grid = prediction.heatmap;
  if (!Array.isArray(grid) || !grid.length || !Array.isArray(grid[0]) || !grid[0].length) return null;
  const columns = grid[0].length;
  const valid = grid.every((row) => Array.isArray(row) && row.length === columns && row.every(Number.isFinite));
  return valid ? grid : null;
}

// Value at (x, y) in grid units: cell (r, c) covers [c, c+1) x [r, r+1) and holds the value at its
// centre; bilinear between the four nearest centres, held flat beyond the outer ones.
function sample(grid, x, y) {
  const rows = grid.length;
  const columns = grid[0].length;
  const gx = Math.min(Math.max(x - 0.5, 0), columns - 1);
  const gy = Math.min(Math.max(y - 0.5, 0), rows - 1);
  const c0 = Math.floor(gx);
  const r0 = Math.floor(gy);
  const c1 = Math.min(c0 + 1, columns - 1);
  const r1 = Math.min(r0 + 1, rows - 1);
  const fx = gx - c0;
  const fy = gy - r0;
  const top = grid[r0][c0] * (1 - fx) + grid[r0][c1] * fx;
  const bottom = grid[r1][c0] * (1 - fx) + grid[r1][c1] * fx;
  return top * (1 - fy) + bottom * fy;
}

// Draws the grid stretched over the canvas's displayed box, at the screen's pixel density.
function drawHeatmap(canvas, grid) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const rows = grid.length;
  const columns = grid[0].length;
  for (let py = 0; py < height; py++) {
    const y = ((py + 0.5) / height) * rows;
    for (let px = 0; px < width; px++) {
      image.data.set(colourAt(sample(grid, ((px + 0.5) / width) * columns, y)), (py * width + px) * 4);
    }
  }
  context.putImageData(image, 0, 0);
}

function drawLegendBar(canvas) {
  canvas.width = LEGEND_STEPS;
  canvas.height = 1;
  const context = canvas.getContext("2d");
  const image = context.createImageData(LEGEND_STEPS, 1);
  for (let x = 0; x < LEGEND_STEPS; x++) image.data.set(colourAt(x / (LEGEND_STEPS - 1)), x * 4);
  context.putImageData(image, 0, 0);
}

// Where the strongest evidence lies, in words (thirds of the photo), for screen readers.
function peakText(grid) {
  let best = { value: 0, row: 0, column: 0 };
  grid.forEach((row, r) => row.forEach((value, c) => {
    if (value > best.value) best = { value, row: r, column: c };
  }));
  if (best.value <= 0) return t().heatmapNone;
  const third = (index, count) => Math.min(2, Math.floor((3 * (index + 0.5)) / count));
  const words = t().thirds;
  const place = [words.rows[third(best.row, grid.length)], words.columns[third(best.column, grid[0].length)]]
    .filter(Boolean).join(" ") || words.centre;
  return t().heatmapPeak(place);
}

let nextCardId = 1;

// Marks a card's toggle as having no heat map to offer, keyed by its button (see noHeatmaps).
const markMissing = new WeakMap();

// The served model cannot draw heat maps: say so on every card that has no map yet.
function noHeatmaps() {
  explainable = false;
  document.querySelectorAll("#results .toggle").forEach((button) => {
    const mark = markMissing.get(button);
    if (mark) mark();
  });
}

// The toggle, the overlay and the legend of one verdict card; `frame` holds the photo, `b64` the
// photo as sent. The map is asked for on the first press, then kept: later presses only show or
// hide it.
function heatmapControls(frame, img, b64) {
  const id = nextCardId++;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button secondary toggle";
  button.textContent = t().heatmapToggle;
  button.setAttribute("aria-pressed", "false");
  // Progress, failures, or why there is no map: a polite live region of the card's own.
  const status = document.createElement("p");
  status.className = "small heatmap-status";
  status.id = `heatmap-status-${id}`;
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  const legend = heatmapLegend(id);
  let canvas = null;
  let grid = null;
  let busy = false;

  const missing = () => {
    if (grid) return; // a map already drawn for this photo stays available
    button.disabled = true;
    button.removeAttribute("aria-pressed");
    button.removeAttribute("aria-busy");
    status.classList.add("heatmap-missing");
    status.textContent = t().heatmapMissing;
    button.setAttribute("aria-describedby", status.id);
  };
  markMissing.set(button, missing);

  const show = (on) => {
    canvas.hidden = !on;
    legend.hidden = !on;
    if (on) drawHeatmap(canvas, grid); // drawn before the toggle says so
    button.setAttribute("aria-pressed", String(on));
  };

  const fetchGrid = async () => {
    busy = true;
    button.setAttribute("aria-busy", "true");
    status.classList.remove("heatmap-missing");
    status.textContent = t().heatmapLoading;
    try {
      const [row] = await post([{ b64 }], true);
      const answered = row && !row.error ? heatmapGrid(row) : null;
      if (!answered) {
        if (row && row.error) {
          status.textContent = `${t().error} : ${row.error}`;
        } else {
          missing(); // an older version: it ignores `explain`
        }
        return;
      }
      grid = answered;
      status.textContent = "";
      canvas = document.createElement("canvas");
      canvas.className = "heatmap";
      canvas.id = `heatmap-${id}`;
      canvas.hidden = true;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", t().heatmapAlt(peakText(grid)));
      frame.append(canvas);
      button.setAttribute("aria-controls", canvas.id);
      button.setAttribute("aria-describedby", legend.id);
      // The photo's box changes when it loads or the layout reflows: redraw at the new size.
      new ResizeObserver(() => {
        if (!canvas.hidden) drawHeatmap(canvas, grid);
      }).observe(img);
      show(true);
    } catch (error) {
      if (error instanceof ExplainRefused) {
        missing();
        noHeatmaps();
      } else {
        status.textContent = error.message; // busy or down: the user can press again
      }
    } finally {
      busy = false;
      button.removeAttribute("aria-busy");
    }
  };

  button.addEventListener("click", () => {
    if (busy || button.disabled) return;
    if (grid) {
      show(button.getAttribute("aria-pressed") !== "true");
    } else {
      fetchGrid();
    }
  });
  if (!explainable) missing(); // learnt earlier in this visit
  return [button, status, legend];
}

function heatmapLegend(id) {
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.id = `heatmap-legend-${id}`;
  legend.hidden = true;
  const title = document.createElement("p");
  title.className = "legend-title";
  title.textContent = t().heatmapLegend;
  const bar = document.createElement("canvas");
  bar.className = "legend-bar";
  bar.setAttribute("aria-hidden", "true");
  drawLegendBar(bar);
  const ends = document.createElement("p");
  ends.className = "legend-ends";
  for (const text of [`0 · ${t().heatmapLow}`, `${t().heatmapHigh} · 1`]) {
    const end = document.createElement("span");
    end.textContent = text;
    ends.append(end);
  }
  legend.append(title, bar, ends);
  return legend;
}

function card(photo, prediction, b64) {
  const item = document.createElement("li");
  item.className = "card";
  // The photo as sent (its object URL, oriented by the browser as the model oriented it), shown
  // uncropped: the heat map covers exactly this box.
  const frame = document.createElement("div");
  frame.className = "photo";
  const img = document.createElement("img");
  img.src = photo.url;
  img.alt = photo.file.name;
  frame.append(img);
  const body = document.createElement("div");
  const name = document.createElement("p");
  name.className = "name";
  name.textContent = photo.file.name;
  body.append(name);
  if (prediction.error) {
    item.classList.add("invalid");
    const message = document.createElement("p");
    message.className = "problem";
    message.textContent = `${t().refused} : ${prediction.error}`;
    body.append(message);
  } else {
    item.classList.add(prediction.label);
    const verdict = document.createElement("p");
    verdict.className = "verdict";
    verdict.textContent = t().labels[prediction.label] || prediction.label;
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = prediction.confidence;
    meter.setAttribute("aria-label", t().confidence);
    const confidence = document.createElement("p");
    confidence.className = "confidence";
    confidence.textContent = `${t().confidence} : ${(prediction.confidence * 100).toFixed(1)} %`;
    const probabilities = document.createElement("p");
    probabilities.className = "probabilities small";
    probabilities.textContent = Object.entries(prediction.probabilities)
      .map(([label, p]) => `${t().labels[label] || label} ${(p * 100).toFixed(1)} %`)
      .join(" · ");
    body.append(verdict, meter, confidence, probabilities, ...heatmapControls(frame, img, b64));
  }
  item.append(frame, body);
  return item;
}

async function predict() {
  const valid = photos.filter((p) => !problemOf(p.file));
  if (!valid.length) {
    $("status").textContent = t().nothing;
    return;
  }
  $("predict").disabled = true;
  $("status").textContent = t().sending(valid.length);
  $("results").replaceChildren();
  try {
    const items = await Promise.all(valid.map(async (photo) => ({ photo, b64: await readBase64(photo.file) })));
    let answered = 0;
    for (const group of batches(items)) {
      const predictions = await send(group);
      group.forEach((item, index) => $("results").append(card(item.photo, predictions[index], item.b64)));
      answered += group.length;
    }
    $("status").textContent = t().done(answered);
  } catch (error) {
    $("status").textContent = error.message;
  } finally {
    $("predict").disabled = false;
  }
}

function init() {
  $("file-input").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
  $("camera-input").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
  for (const id of ["pick-label", "camera-label"]) {
    $(id).addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        $(id === "pick-label" ? "file-input" : "camera-input").click();
      }
    });
  }
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  $("predict").addEventListener("click", predict);
  $("clear").addEventListener("click", () => {
    photos.forEach((p) => URL.revokeObjectURL(p.url));
    photos = [];
    $("results").replaceChildren();
    $("status").textContent = "";
    renderPreviews();
  });
  $("lang-switch").addEventListener("click", () => {
    lang = lang === "fr" ? "en" : "fr";
    applyLanguage();
  });
  applyLanguage();
}

document.addEventListener("DOMContentLoaded", init);
