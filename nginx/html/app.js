// FloriSense web page: pick or drop photos, send them to /predict, show a verdict card each.
// Photos are sent as they are (no downscaling in the browser): the model's own preprocessing
// decides, so the page and every other client get the same answer for the same file.
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

async function send(group) {
  const body = JSON.stringify({ dataframe_records: group.map((item) => ({ image: item.b64 })) });
  let response;
  try {
    response = await fetch("/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  } catch (networkError) {
    throw new Error(t().down);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (notJson) {
    payload = null;
  }
  if (response.status === 502 || response.status === 503 || response.status === 504) throw new Error(t().down);
  if (response.status === 429) throw new Error(t().busy);
  if (!response.ok || !payload || !Array.isArray(payload.predictions)) {
    throw new Error(`${t().error} (${response.status}) : ${(payload && payload.error) || ""}`);
  }
  return payload.predictions;
}

function card(photo, prediction) {
  const item = document.createElement("li");
  item.className = "card";
  const img = document.createElement("img");
  img.src = photo.url;
  img.alt = photo.file.name;
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
    body.append(verdict, meter, confidence, probabilities);
  }
  item.append(img, body);
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
      group.forEach((item, index) => $("results").append(card(item.photo, predictions[index])));
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
