// genrelens web page: plot + poster in, genre probability bars out. No dependencies, no network beyond this server.
// Everything shown is set with textContent or attributes (no HTML parsing), so any text renders as text.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { poster: null, previewUrl: null, model: null };
const KEY_STORE = "genrelens-api-key";  // sessionStorage: kept for this tab only, gone when it closes

// --- API key: asked once, when a call is refused (401), then sent on every call of this tab ---------------

function storedKey() {
  try { return sessionStorage.getItem(KEY_STORE); } catch { return null; }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE);
  } catch { /* storage disabled: the key lives until the page reloads */ }
  state.key = key || null;
}

let keyAsked = null;  // one dialog for every call refused at the same time

function askKey(refused) {
  if (keyAsked) return keyAsked;
  keyAsked = new Promise((resolve) => {
    const dialog = $("key-dialog");
    const input = $("api-key");
    $("key-error").hidden = !refused;
    input.value = "";
    const done = (key) => {
      $("key-form").removeEventListener("submit", onSubmit);
      $("key-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      keyAsked = null;
      resolve(key);
    };
    const onSubmit = (e) => { e.preventDefault(); done(input.value.trim() || null); };
    const onCancel = (e) => { e.preventDefault(); done(null); };
    $("key-form").addEventListener("submit", onSubmit);
    $("key-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
  return keyAsked;
}

// fetch() for this service's API: sends the tab's key, and asks for one when the service refuses the call.
async function api(path, options = {}) {
  for (;;) {
    const key = storedKey() || state.key;
    const headers = new Headers(options.headers || {});
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    const now = storedKey() || state.key;
    if (now && now !== key) continue;  // another call got a new key meanwhile: use it
    const entered = await askKey(Boolean(key));
    if (!entered) return response;  // cancelled: the caller shows the service's message
    storeKey(entered);
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setPoster(file, name) {
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.poster = file;
  state.previewUrl = file ? URL.createObjectURL(file) : null;
  $("preview").hidden = !file;
  if (file) $("preview").src = state.previewUrl; else $("preview").removeAttribute("src");
  $("poster-name").textContent = file ? (name || file.name || "poster") : "";
  $("clear-poster").hidden = !file;
  $("drop-hint").hidden = Boolean(file);
}

function pickFile(files) {
  const file = files && files[0];
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(`"${file.name}" is not an image.`);
    return;
  }
  showError("");
  setPoster(file, file.name);
}

function pct(p) { return `${(100 * p).toFixed(1)}%`; }
function roundPct(p) { return `${Math.round(100 * p)}%`; }

// Why an answer is worth a human look: the service's own words for each review_reasons code (GET /v1/model), as a
// sentence; a code it does not describe is shown as words.
function reasonText(code) {
  const words = (state.model && state.model.review_reasons && state.model.review_reasons[code])
    || String(code).replace(/_/g, " ");
  return `${words.charAt(0).toUpperCase()}${words.slice(1)}.`;
}

function renderReview(data) {
  const codes = Array.isArray(data.review_reasons) ? data.review_reasons : null;
  const flagged = Boolean(data.review) || Boolean(codes && codes.length);
  const badge = $("review-badge");
  badge.className = flagged ? "badge review" : "badge sure";
  badge.textContent = flagged ? "Worth a human check" : "No check needed";
  const texts = codes && codes.length ? codes.map(reasonText)
    : flagged ? [reasonText("low_confidence")] : [];
  $("review-reasons").replaceChildren(...texts.map((t, i) => {
    const li = el("li", "", t);
    if (codes && codes[i]) li.dataset.reason = codes[i];
    return li;
  }));
  $("review-box").dataset.review = String(flagged);
}

function renderResult(data) {
  const labels = Object.keys(data.scores).sort((a, b) => data.scores[b] - data.scores[a]);
  const chosen = new Set(data.genres);
  const chips = $("genres");
  chips.replaceChildren(...data.genres.map((g) => {
    const chip = el("span", "chip", g);
    chip.title = `${g}: ${roundPct(data.scores[g])} likely`;
    return chip;
  }));
  const rows = labels.map((label) => {
    const p = data.scores[label];
    const t = data.thresholds ? data.thresholds[label] : undefined;
    const li = el("li", chosen.has(label) ? "on" : "");
    li.dataset.label = label;
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = pct(Math.min(1, Math.max(0, p)));
    track.append(fill);
    if (t !== undefined) {
      const tick = el("div", "tick");
      tick.style.left = `calc(${pct(t)} - 1px)`;
      tick.title = `threshold ${t.toFixed(2)}`;
      track.append(tick);
    }
    track.title = `${label}: ${pct(p)}${t !== undefined ? ` (threshold ${pct(t)})` : ""}`;
    li.append(el("span", "name", label), track, el("span", "value", pct(p)));
    return li;
  });
  $("bars").replaceChildren(...rows);
  renderReview(data);
  const hasConfidence = data.confidence !== undefined && data.confidence !== null;
  $("confidence").hidden = !hasConfidence;
  if (hasConfidence) {
    $("confidence-value").textContent = data.confidence < 0.01 ? "under 1%" : roundPct(data.confidence);
  }
  $("warnings").replaceChildren(...(data.warnings || []).map((w) => el("li", "", w)));
  $("why-view").hidden = true;
  $("result").hidden = false;
  $("result-empty").hidden = true;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.detail ? String(body.detail) : `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function movieForm() {
  const plot = $("plot").value.trim();
  const title = $("title").value.trim();
  if (!plot && !state.poster && !title) return null;
  const form = new FormData();
  if (title) form.append("title", title);
  if (plot) form.append("plot", plot);
  if (state.poster) form.append("poster", state.poster, $("poster-name").textContent || "poster");
  return form;
}

function renderShares(m) {
  const rows = [["plot", m.plot_share, m.plot], ["poster", m.poster_share, m.poster]].map(([name, share, value]) => {
    const row = el("div", "share");
    row.dataset.modality = name;
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = pct(share);
    track.append(fill);
    track.title = `${name}: ${value >= 0 ? "+" : ""}${value.toFixed(2)} on the logit`;
    row.append(el("span", "name", name), track, el("span", "value", pct(share)));
    return row;
  });
  $("why-shares").replaceChildren(...rows);
}

function renderWords(explanation, genre, plot) {
  const attrs = explanation.word_attributions[genre] || [];
  const scale = Math.max(1e-9, ...attrs.map((a) => Math.abs(a)));
  const nodes = [];
  let at = 0;
  explanation.plot_words.forEach((w, i) => {
    if (w.start > at) nodes.push(document.createTextNode(plot.slice(at, w.start)));
    const a = attrs[i] || 0;
    const span = el("span", a > 0 ? "word pos" : a < 0 ? "word neg" : "word", w.word);
    span.style.setProperty("--w", (0.08 + 0.7 * Math.abs(a) / scale).toFixed(3));
    span.dataset.attribution = a;
    span.title = `${a >= 0 ? "+" : ""}${a.toFixed(3)}`;
    nodes.push(span);
    at = w.end;
  });
  if (at < plot.length) nodes.push(document.createTextNode(plot.slice(at)));
  $("why-plot").replaceChildren(...nodes);
  if (!explanation.plot_words.length) $("why-plot").textContent = "No plot given.";
}

function showGenre(explanation, genre, plot) {
  for (const b of $("why-genres").children) b.setAttribute("aria-selected", String(b.dataset.genre === genre));
  renderShares(explanation.modalities[genre]);
  renderWords(explanation, genre, plot);
  const png = explanation.poster_heatmap[genre];
  $("why-heatmap").hidden = !png;
  $("why-noposter").hidden = Boolean(png);
  if (png) $("why-heatmap").src = `data:image/png;base64,${png}`; else $("why-heatmap").removeAttribute("src");
}

async function why() {
  const form = movieForm();
  if (!form) return;
  $("why-view").hidden = false;
  $("why-body").hidden = true;
  $("why-status").textContent = "Explaining… (about a second)";
  $("why").disabled = true;
  try {
    const response = await api("/v1/explain", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorMessage(response));
    const data = await response.json();
    const explanation = data.explanation;
    const plot = explanation.text ?? (form.get("plot") || "");  // word offsets refer to the text the model read
    $("why-genres").replaceChildren(...explanation.genres.map((g) => {
      const b = el("button", "", g);
      b.type = "button";
      b.dataset.genre = g;
      b.setAttribute("role", "tab");
      b.addEventListener("click", () => showGenre(explanation, g, plot));
      return b;
    }));
    showGenre(explanation, explanation.genres[0], plot);
    $("why-status").textContent = "";
    $("why-body").hidden = false;
    $("why-view").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (e) {
    $("why-status").textContent = `Could not explain: ${e.message}`;
  } finally {
    $("why").disabled = false;
  }
}

async function predict(event) {
  if (event) event.preventDefault();
  const form = movieForm();
  if (!form) {
    showError("Paste a plot, add a poster, or both (with a title).");
    return false;
  }
  showError("");
  $("submit").disabled = true;
  $("submit").textContent = "Predicting…";
  try {
    const response = await api("/v1/predict", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorMessage(response));
    renderResult(await response.json());
    return true;
  } catch (e) {
    showError(`Could not predict: ${e.message}`);
    return false;
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = "Predict genres";
  }
}

async function loadModel() {
  try {
    const response = await api("/v1/model");
    if (!response.ok) throw new Error(await errorMessage(response));
    const m = (state.model = await response.json());
    const inputs = [m.uses_text && "plots", m.uses_poster && "posters"].filter(Boolean).join(" and ");
    let text = `Model “${m.model}”` + (inputs ? `, reads ${inputs}` : "");
    const f1 = m.metrics || {};
    if (typeof f1.weighted_f1 === "number") {
      const movies = f1.n_rows ? `${f1.n_rows.toLocaleString("en")} movies` : "movies";
      text += `. Tested on ${movies} it had not seen: it scores ${Math.round(100 * f1.weighted_f1)} out of 100 ` +
        "at naming their genres (100: every genre found, none added).";
      $("model-info").title = ["weighted", "micro", "macro"].filter((k) => typeof f1[`${k}_f1`] === "number")
        .map((k) => `${k} F1 ${f1[`${k}_f1`].toFixed(3)}`).join(", ") + " on the test split";
    }
    $("model-info").textContent = text;
  } catch (e) {
    $("model-info").textContent = `model unavailable: ${e.message}`;
  }
}

async function useExample(example) {
  $("title").value = example.title || "";
  $("plot").value = example.plot || "";
  updateCount();
  setPoster(null);
  showError("");
  if (example.poster) {
    const response = await api(example.poster);
    if (response.ok) setPoster(await response.blob(), `${example.title || example.id} poster`);
  }
  if (await predict()) {
    $("result-title").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
}

async function loadExamples() {
  const box = $("examples");
  try {
    const response = await api("/v1/examples");
    if (!response.ok) throw new Error(await errorMessage(response));
    const { examples } = await response.json();
    if (!examples.length) {
      box.replaceChildren(el("p", "hint", "No example movies found (the model's data is not available)."));
      return;
    }
    box.replaceChildren(...examples.map((ex) => {
      const button = el("button", "example");
      button.type = "button";
      if (ex.poster) {  // fetched, not linked: an <img> could not send the API key
        const img = el("img");
        img.alt = "";
        button.append(img);
        api(ex.poster).then((r) => (r.ok ? r.blob() : null)).then((blob) => {
          if (blob) img.src = URL.createObjectURL(blob);
        }).catch(() => {});
      }
      button.append(el("span", "title", ex.year ? `${ex.title} (${ex.year})` : ex.title),
        el("span", "truth", `true: ${(ex.genres || []).join(", ") || "?"}`));
      button.title = ex.plot || "";
      button.addEventListener("click", () => useExample(ex));
      return button;
    }));
  } catch (e) {
    box.replaceChildren(el("p", "hint", `Examples unavailable: ${e.message}`));
  }
}

function updateCount() { $("plot-count").textContent = $("plot").value.length; }

function wireDropzone() {
  const zone = $("dropzone");
  const input = $("poster");
  zone.addEventListener("click", (e) => { if (e.target !== input) input.click(); });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  input.addEventListener("change", () => { pickFile(input.files); input.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => pickFile(e.dataTransfer && e.dataTransfer.files));
  $("clear-poster").addEventListener("click", () => setPoster(null));
}

document.addEventListener("DOMContentLoaded", () => {
  wireDropzone();
  $("plot").addEventListener("input", updateCount);
  $("predict-form").addEventListener("submit", predict);
  $("why").addEventListener("click", why);
  $("predict-form").addEventListener("reset", () => {
    setPoster(null);
    showError("");
    $("result").hidden = true;
    $("why-view").hidden = true;
    $("result-empty").hidden = false;
    setTimeout(updateCount);
  });
  loadModel();
  loadExamples();
});
