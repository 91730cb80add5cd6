/* genre_tagger catalog page: plain JS, no build step, no network beyond this server.
 * Views by URL hash: #/?filters (catalog), #/search?text=Q (or ?file=KEY after an upload),
 * #/album/ID, #/map, #/review, #/tag.
 * Every request sends X-Genre-Tagger: 1 (with the token cookie, the server accepts POSTs
 * only beside it). Data goes into the page through textContent, never as HTML. */
"use strict";

const PAGE = 48;
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#2f4b7c", "#a05195", "#d45087", "#665191", "#00a39b", "#c4a000", "#7f8c8d"];
const OTHER = "#c8c8c8";
const $ = (selector) => document.querySelector(selector);
let info = null;
let fileSearch = null; // {key, title, results}: the last upload search (files cannot live in the URL)
let mapData = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, {...options, credentials: "same-origin",
    headers: {"X-Genre-Tagger": "1", ...(options.headers || {})}});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) { $("#token-box").hidden = false; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) {
  const banner = $("#banner");
  banner.textContent = message;
  banner.hidden = !message;
}

function colourOf(genre) {
  if (!mapData || !genre) return OTHER;
  const slot = mapData.genres.indexOf(genre);
  return slot >= 0 && slot < PALETTE.length ? PALETTE[slot] : OTHER;
}

function hashColour(text) {
  let h = 0;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

function albumLink(id) { return "#/album/" + encodeURIComponent(id); }

function coverNode(album, cls) {
  const url = album.media ? album.media.cover : album.cover;
  if (url) return el("img", {class: cls, src: url, alt: "", loading: "lazy"});
  const box = el("div", {class: "nocover " + cls, text: (album.title || album.id || "?").slice(0, 1).toUpperCase()});
  box.style.background = hashColour(album.id || "");
  return box;
}

function genreChips(album, limit) {
  const chips = el("div", {class: "chips"});
  const scores = album.scores || {};
  const names = album.genres && album.genres.length ? album.genres : [];
  for (const genre of names.slice(0, limit)) {
    const score = scores[genre];
    chips.append(el("button", {class: "chip", type: "button", title: `filter by ${genre}`,
      onclick: (event) => { event.stopPropagation(); setFilters({genre}); }},
      genre, score !== undefined ? el("b", {text: score.toFixed(2)}) : null));
  }
  if (!names.length && album.status === "ok") {
    const top = Object.entries(scores)[0];
    chips.append(el("span", {class: "chip dim", text: top ? `no confident genre (${top[0]} ${top[1].toFixed(2)})` : "no confident genre"}));
  }
  return chips;
}

function statusBadge(album) {
  if (album.status === "error") return el("span", {class: "badge error", text: "error"});
  if (album.status === "untagged") return el("span", {class: "badge untagged", text: "untagged"});
  if (album.warnings && album.warnings.length) return el("span", {class: "badge warn", text: `${album.warnings.length} warning(s)`});
  return null;
}

function card(album, extra) {
  return el("div", {class: "card", "data-id": album.id, onclick: () => { location.hash = albumLink(album.id); }},
    coverNode(album, "thumb"),
    el("div", {class: "body"},
      el("div", {class: "title", text: album.title || album.id, title: album.title || album.id}),
      el("div", {class: "artist", text: album.artist || ""}),
      extra || null,
      statusBadge(album),
      genreChips(album, 3)));
}

/* ---------- catalog ---------- */

function currentFilters() {
  const query = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(query));
}

function setFilters(changes, keepPage) {
  const filters = {...currentFilters(), ...changes};
  if (!keepPage) delete filters.offset;
  for (const [key, value] of Object.entries(filters)) if (value === "" || value === null || value === undefined) delete filters[key];
  location.hash = "#/?" + new URLSearchParams(filters).toString();
}

function syncForm(filters) {
  const form = $("#filters");
  for (const field of form.elements) {
    if (!field.name) continue;
    field.value = filters[field.name] !== undefined ? filters[field.name] : (field.name === "sort" ? "manifest" : field.name === "min_score" ? "0" : "");
  }
  $("#min-score-out").textContent = filters.min_score ? Number(filters.min_score).toFixed(2) : "–";
}

async function showCatalog() {
  const filters = currentFilters();
  syncForm(filters);
  $("#search-form").text.value = "";
  const grid = $("#grid");
  const summary = $("#summary");
  const params = new URLSearchParams({...filters, limit: PAGE});
  if (params.get("min_score") === "0") params.delete("min_score");
  const data = await api("/api/albums?" + params.toString());
  const offset = Number(filters.offset || 0);
  grid.replaceChildren(...data.albums.map((album) => card(album)));
  summary.textContent = data.total === 0 ? "No album matches these filters." :
    `${data.total.toLocaleString()} album(s)` + (filters.genre ? ` tagged ${filters.genre}` : "");
  $(".pager").hidden = data.total <= PAGE;
  $("#page").textContent = `${offset + 1}–${Math.min(offset + PAGE, data.total)} of ${data.total.toLocaleString()}`;
  $("#prev").disabled = offset === 0;
  $("#next").disabled = offset + PAGE >= data.total;
}

function showResults(title, results) {
  $("#grid").replaceChildren(...results.map((r) => card(r, el("div", {class: "muted", text: `match ${r.score.toFixed(3)}`}))));
  $("#summary").replaceChildren(title, el("a", {class: "chip", href: "#/", text: "back to the list"}));
  $(".pager").hidden = true;
}

async function showSearch() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  syncForm({});
  const text = params.get("text");
  if (text) {
    $("#search-form").text.value = text;
    const data = await api("/api/search?" + new URLSearchParams({text, k: 24}));
    showResults(`Albums matching “${text}”`, data.results);
  } else if (fileSearch && fileSearch.key === params.get("file")) {
    showResults(fileSearch.title, fileSearch.results);
  } else {
    location.hash = "#/";
  }
}

async function searchFile(kind, input) {
  const file = input.files[0];
  if (!file) return;
  const body = new FormData();
  body.append("file", file);
  input.value = "";
  showError("");
  try {
    const data = await api(`/api/search/${kind}?k=24`, {method: "POST", body});
    fileSearch = {key: String(Date.now()), title: `Albums whose ${kind} is like ${file.name}`, results: data.results};
    location.hash = "#/search?file=" + fileSearch.key;
  } catch (error) { showError(error.message); }
}

/* ---------- album ---------- */

function table(rows) {
  return el("table", {class: "kv"}, rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => el("tr", {}, el("td", {text: k}), el("td", {text: Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v)}))));
}

const OWN_KEYS = new Set(["id", "status", "genres", "scores", "modalities", "warnings", "error", "primary", "declared", "media", "artist", "title"]);

async function showAlbum(id) {
  const view = $("#view-album");
  view.replaceChildren(el("p", {class: "muted", text: "loading…"}));
  const album = await api("/api/albums/" + encodeURIComponent(id));
  const confident = new Set(album.genres);
  const bars = el("div", {class: "bars"}, Object.entries(album.scores).map(([genre, score]) => {
    const fill = el("div", {class: "fill"});
    fill.style.width = `${Math.round(score * 100)}%`;
    return el("div", {class: "bar" + (confident.has(genre) ? " on" : "")},
      el("span", {class: "name", text: genre}), el("div", {class: "track"}, fill), el("span", {text: score.toFixed(3)}));
  }));
  const tracks = el("div", {class: "tracks"}, album.media.audio.map((url, k) =>
    el("div", {}, el("div", {class: "muted", text: `Track ${k + 1}`}), el("audio", {controls: true, preload: "none", src: url}))));
  const extras = Object.entries(album).filter(([k]) => !OWN_KEYS.has(k));
  const words = (list) => list.map((m) => m === "image" ? "cover" : m);
  const left = el("div", {}, coverNode(album, "cover"),
    album.media.audio.length ? el("h3", {text: "Listen"}) : null, album.media.audio.length ? tracks : null);
  const right = el("div", {},
    el("h2", {text: album.title || album.id}), el("div", {class: "muted", text: album.artist || ""}),
    el("p", {}, statusBadge(album), " ", el("span", {class: "muted", text: `id ${album.id}`})),
    album.error ? el("p", {class: "error-text", text: album.error}) : null,
    el("h3", {text: "Genres"}), genreChips(album, 20),
    Object.keys(album.scores).length ? el("h3", {text: "Scores (top labels; bold = over its threshold)"}) : null,
    Object.keys(album.scores).length ? bars : null,
    el("h3", {text: "Modalities"}),
    table([["used for tagging", album.status === "untagged" ? "(not tagged)" : words(album.modalities).join(", ") || "none"],
           ["in the manifest", words(album.declared).join(", ") || "none"]]),
    album.warnings.length ? el("h3", {text: "Warnings"}) : null,
    album.warnings.length ? el("ul", {class: "warnings"}, album.warnings.map((w) => el("li", {text: w}))) : null,
    extras.length ? el("h3", {text: "Manifest fields"}) : null, extras.length ? table(extras) : null,
    el("div", {id: "similar"}), el("div", {id: "next-up"}));
  view.replaceChildren(el("p", {}, el("a", {href: "#/", text: "← back to the catalog"})), el("div", {class: "album"}, left, right));
  if (info.features.similar) {
    const box = $("#similar");
    box.append(el("h3", {text: "More like this"}));
    api(`/api/albums/${encodeURIComponent(id)}/similar?k=8`).then((data) => {
      box.append(el("div", {class: "small-grid"}, data.results.map((r) => card(r, el("div", {class: "score", text: `similarity ${r.score.toFixed(3)}`})))));
    }).catch((error) => box.append(el("p", {class: "muted", text: error.message})));
  }
  if (info.features.recommend) {
    const box = $("#next-up");
    api("/api/recommend", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({history: [id], k: 8})})
      .then((data) => box.append(el("h3", {text: "Listeners of this album play next"}),
        el("div", {class: "small-grid"}, data.recommendations.map((r) => card(r)))))
      .catch(() => {});
  }
}

/* ---------- map ---------- */

const mapView = {points: null, width: 0, height: 0, hidden: new Set(), cells: null, cell: 16};

async function showMap() {
  if (!mapData) mapData = await api("/api/map");
  drawMap();
}

function drawMap() {
  const canvas = $("#map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = 18, n = mapData.ids.length;
  const radius = n > 20000 ? 1.3 : n > 2000 ? 2.2 : 4.5;
  mapView.points = new Float32Array(n * 2);
  mapView.cells = new Map();
  for (let i = 0; i < n; i++) {
    const x = pad + (mapData.x[i] + 1) / 2 * (width - 2 * pad);
    const y = pad + (1 - (mapData.y[i] + 1) / 2) * (height - 2 * pad);
    mapView.points[2 * i] = x; mapView.points[2 * i + 1] = y;
    const key = `${Math.floor(x / mapView.cell)},${Math.floor(y / mapView.cell)}`;
    if (!mapView.cells.has(key)) mapView.cells.set(key, []);
    mapView.cells.get(key).push(i);
  }
  ctx.globalAlpha = n > 20000 ? 0.55 : 0.85;
  for (let i = 0; i < n; i++) {
    const slot = mapData.genre[i];
    const genre = slot >= 0 ? mapData.genres[slot] : null;
    if (mapView.hidden.has(genre || "")) continue;
    ctx.fillStyle = slot >= 0 && slot < PALETTE.length ? PALETTE[slot] : OTHER;
    ctx.beginPath();
    ctx.arc(mapView.points[2 * i], mapView.points[2 * i + 1], radius, 0, 2 * Math.PI);
    ctx.fill();
  }
  const legend = $("#map-legend");
  const shown = mapData.genres.slice(0, PALETTE.length);
  legend.replaceChildren(...shown.map((genre, slot) => {
    const dot = el("i");
    dot.style.background = PALETTE[slot];
    return el("span", {class: mapView.hidden.has(genre) ? "off" : "", title: "show / hide",
      onclick: () => { mapView.hidden.has(genre) ? mapView.hidden.delete(genre) : mapView.hidden.add(genre); drawMap(); }}, dot, genre);
  }));
  if (mapData.genres.length > PALETTE.length || mapData.genre.includes(-1)) {
    const dot = el("i");
    dot.style.background = OTHER;
    legend.append(el("span", {}, dot, "other / none"));
  }
  $("#map-note").textContent = `${n.toLocaleString()} albums placed by a 2-D PCA of their search vectors` +
    (mapData.indexed > n ? ` (an even sample of ${mapData.indexed.toLocaleString()})` : "") + "; colour: top genre. Hover for a name, click to open.";
}

function nearestPoint(x, y) {
  if (!mapView.points) return -1;
  const cx = Math.floor(x / mapView.cell), cy = Math.floor(y / mapView.cell);
  let best = -1, bestDistance = 10 * 10;
  for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
    for (const i of mapView.cells.get(`${cx + dx},${cy + dy}`) || []) {
      const slot = mapData.genre[i];
      if (mapView.hidden.has(slot >= 0 ? mapData.genres[slot] : "")) continue;
      const d = (mapView.points[2 * i] - x) ** 2 + (mapView.points[2 * i + 1] - y) ** 2;
      if (d < bestDistance) { bestDistance = d; best = i; }
    }
  }
  return best;
}

function mapPointer(event) {
  const canvas = $("#map-canvas");
  const box = canvas.getBoundingClientRect();
  const x = event.clientX - box.left, y = event.clientY - box.top;
  return {i: nearestPoint(x, y), x, y};
}

/* ---------- review ---------- */

function listTable(columns, rows, idColumn) {
  return el("table", {class: "list"}, el("tr", {}, columns.map((c) => el("th", {text: c}))),
    rows.map((row) => el("tr", {}, columns.map((c, k) => {
      const value = Array.isArray(row) ? row[k] : row[c];
      const text = Array.isArray(value) ? value.join("; ") : value === null || value === undefined ? "" : typeof value === "number" ? value.toFixed(3) : String(value);
      return el("td", {}, k === idColumn ? el("a", {href: albumLink(text), text}) : text);
    }))));
}

async function showReview() {
  const view = $("#view-review");
  const data = await api("/api/review");
  const c = data.counts;
  const section = (title, part, columns) => part.total ? [el("h3", {text: `${title} (${part.total.toLocaleString()})`}),
    listTable(columns, part.rows, 0), part.total > part.rows.length ? el("p", {class: "muted", text: `first ${part.rows.length} shown`}) : null] : [];
  const nodes = [el("h2", {text: "Review"}),
    el("div", {class: "stats"}, [["albums", c.albums], ["ok", c.ok], ["errors", c.error], ["untagged", c.untagged],
      ["with warnings", data.warnings.total], ["no confident genre", data.unconfident.total]]
      .map(([k, v]) => el("div", {class: "stat"}, el("b", {text: v.toLocaleString()}), k))),
    ...section("Errors: nothing usable", data.errors, ["id", "artist", "title", "error"]),
    ...section("Warnings", data.warnings, ["id", "artist", "title", "warnings"]),
    ...section("No confident genre", data.unconfident, ["id", "artist", "title", "top_genre", "top_score"])];
  if (data.audit) {
    for (const [name, tableData] of Object.entries(data.audit)) {
      nodes.push(el("h3", {text: `Audit: ${name}.csv (${tableData.total.toLocaleString()} rows)`}),
        listTable(tableData.columns, tableData.rows, tableData.columns.indexOf("id")));
    }
    if (!Object.keys(data.audit).length) nodes.push(el("p", {class: "muted", text: "The audit folder has no label_review.csv or fill_priorities.csv."}));
  }
  if (!c.error && !data.warnings.total && !data.unconfident.total && !data.audit) nodes.push(el("p", {class: "muted", text: "Nothing to review."}));
  view.replaceChildren(el("div", {class: "review"}, nodes));
}

/* ---------- tag uploads ---------- */

async function tagFiles(event) {
  event.preventDefault();
  const form = event.target;
  const body = new FormData();
  for (const file of form.audio.files) body.append("audio", file);
  if (form.cover.files[0]) body.append("cover", form.cover.files[0]);
  if (form.texts.value.trim()) body.append("texts", form.texts.value);
  const out = $("#tag-result");
  out.replaceChildren(el("p", {class: "muted", text: "tagging…"}));
  try {
    const record = await api("/api/tag", {method: "POST", body});
    out.replaceChildren(el("h3", {text: "Tags"}), genreChips(record, 20),
      table([["scores", Object.entries(record.scores).map(([g, s]) => `${g} ${s.toFixed(3)}`)],
        ["modalities used", record.modalities], ["warnings", record.warnings]]));
  } catch (error) { out.replaceChildren(el("p", {class: "error-text", text: error.message})); }
}

/* ---------- routing ---------- */

async function route() {
  const hash = location.hash || "#/";
  const name = hash.startsWith("#/album/") ? "album" : hash.startsWith("#/map") ? "map" :
    hash.startsWith("#/review") ? "review" : hash.startsWith("#/tag") ? "tag" : hash.startsWith("#/search") ? "search" : "catalog";
  const view = name === "search" ? "catalog" : name;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
  showError("");
  try {
    if (name === "album") await showAlbum(decodeURIComponent(hash.slice("#/album/".length)));
    else if (name === "map") await showMap();
    else if (name === "review") await showReview();
    else if (name === "search") await showSearch();
    else if (name === "catalog") await showCatalog();
  } catch (error) { showError(error.message); }
  document.body.dataset.ready = name;
}

async function start() {
  try { info = await api("/api/info"); } catch (error) { showError(error.message); return; }
  for (const node of document.querySelectorAll("[data-needs]")) node.hidden = !info.features[node.dataset.needs];
  const c = info.counts;
  $("#counts").textContent = `${c.albums.toLocaleString()} albums · ${c.ok.toLocaleString()} tagged` +
    (c.error ? ` · ${c.error.toLocaleString()} errors` : "") + (info.indexed ? ` · ${info.indexed.toLocaleString()} indexed` : "");
  const genres = (await api("/api/genres")).genres;
  $("#filters select[name=genre]").append(...genres.map((g) => el("option", {value: g.genre, text: `${g.genre} (${g.count})`})));
  if (info.features.map && !mapData) api("/api/map").then((data) => { mapData = data; }).catch(() => {});

  const form = $("#filters");
  form.addEventListener("change", (event) => setFilters({[event.target.name]: event.target.value}));
  form.addEventListener("input", (event) => { if (event.target.name === "min_score") $("#min-score-out").textContent = Number(event.target.value).toFixed(2); });
  let typing = null;
  form.q.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => setFilters({q: form.q.value}), 300); });
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", (event) => { event.preventDefault(); location.hash = "#/"; });
  $("#prev").addEventListener("click", () => setFilters({offset: Math.max(0, Number(currentFilters().offset || 0) - PAGE)}, true));
  $("#next").addEventListener("click", () => setFilters({offset: Number(currentFilters().offset || 0) + PAGE}, true));
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = event.target.text.value.trim();
    if (text) location.hash = "#/search?" + new URLSearchParams({text}).toString();
  });
  $("#search-audio").addEventListener("change", (event) => searchFile("audio", event.target));
  $("#search-cover").addEventListener("change", (event) => searchFile("cover", event.target));
  $("#tag-form").addEventListener("submit", tagFiles);
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.href = "/?token=" + encodeURIComponent(event.target.token.value);
  });
  const canvas = $("#map-canvas");
  const tip = $("#map-tip");
  canvas.addEventListener("mousemove", (event) => {
    const {i, x, y} = mapPointer(event);
    if (i < 0) { tip.hidden = true; return; }
    const slot = mapData.genre[i];
    tip.textContent = `${mapData.label[i]} · ${slot >= 0 ? mapData.genres[slot] : "no genre"}`;
    tip.style.left = `${x + 14}px`; tip.style.top = `${y + 10}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  canvas.addEventListener("click", (event) => {
    const {i} = mapPointer(event);
    if (i >= 0) location.hash = albumLink(mapData.ids[i]);
  });
  window.addEventListener("resize", () => { if (!$("#view-map").hidden && mapData) drawMap(); });
  window.addEventListener("hashchange", route);
  route();
}

start();
