// The playground: the real Videos API from the browser, with the key kept in this origin's localStorage.
// No inline handlers or styles, so the page runs under a strict CSP (script-src 'self'; style-src 'self').
"use strict";

const T = JSON.parse(document.getElementById("text").textContent);
const $ = (id) => document.getElementById(id);
const KEY = "reelgate.apiKey";
const FINAL = new Set(["completed", "failed"]);
const POLL_MS = 1000;
let models = [];
let shownId = null;
let timer = null;

function apiKey() {
  return localStorage.getItem(KEY) || "";
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + apiKey() };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  } catch (e) {
    throw new Error(T.unreachable);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error((data && data.error && data.error.message) || T.http_error + " " + response.status);
  }
  return data;
}

function showError(error) {
  $("error").textContent = error ? error.message || String(error) : "";
  $("error").hidden = !error;
}

async function guarded(button, work) {
  showError(null);
  if (button) button.disabled = true;
  try {
    await work();
  } catch (error) {
    showError(error);
  } finally {
    if (button) button.disabled = false;
  }
}

function option(select, value, label) {
  const item = document.createElement("option");
  item.value = value;
  item.textContent = label;
  select.append(item);
}

function isPortrait(size) {
  const [width, height] = size.split("x").map(Number);
  return height > width;
}

async function loadModels() {
  models = (await api("GET", "/v1/models")).data;
  const select = $("model");
  const before = select.value;
  select.replaceChildren();
  models.forEach((model) => option(select, model.id, model.id));
  if (models.some((model) => model.id === before)) select.value = before;
  fillChoices();
}

function fillChoices() {
  const model = models.find((entry) => entry.id === $("model").value);
  const sizes = (model && model.sizes) || [];
  const seconds = (model && model.seconds) || [];
  const portrait = $("orientation").value === "portrait";
  const size = $("size");
  size.replaceChildren();
  sizes.filter((value) => isPortrait(value) === portrait).forEach((value) => option(size, value, value));
  size.disabled = size.options.length < 2;
  const length = $("seconds");
  length.replaceChildren();
  seconds.forEach((value) => option(length, value, value + " s"));
  length.disabled = length.options.length < 2;
}

async function createVideo(event) {
  event.preventDefault();
  await guarded($("create"), async () => {
    const form = new FormData();
    form.append("prompt", $("prompt").value);
    form.append("model", $("model").value);
    if ($("size").value) form.append("size", $("size").value);
    if ($("seconds").value) form.append("seconds", $("seconds").value);
    const image = $("image").files[0];
    if (image) form.append("input_reference", image, image.name);
    follow(await api("POST", "/v1/videos", form));
    loadList().catch(showError);
  });
}

function follow(video) {
  clearTimeout(timer);
  show(video);
  if (!FINAL.has(video.status)) {
    timer = setTimeout(() => poll(video.id), POLL_MS);
  }
}

async function poll(id) {
  try {
    const video = await api("GET", "/v1/videos/" + encodeURIComponent(id));
    if (shownId !== id) return;
    follow(video);
    if (FINAL.has(video.status)) loadList().catch(showError);
  } catch (error) {
    showError(error);
    timer = setTimeout(() => poll(id), POLL_MS * 3);
  }
}

function show(video) {
  const fresh = shownId !== video.id;
  shownId = video.id;
  $("video-card").hidden = false;
  $("video-id").textContent = video.id;
  $("video-prompt").textContent = video.prompt;
  const status = $("video-status");
  status.textContent = (T.status[video.status] || video.status) +
    (video.status === "in_progress" ? " " + video.progress + "%" : "");
  status.className = "badge " + video.status;
  $("video-progress").value = video.status === "completed" ? 100 : video.progress;
  const failure = $("video-failure");
  failure.hidden = !(video.error || video.files_expired);
  failure.textContent = video.error ? video.error.message : video.files_expired ? T.expired : "";
  const ready = video.status === "completed" && !video.files_expired && video.video_url;
  $("player").hidden = !ready;
  if (fresh) $("video").removeAttribute("src");
  if (ready && $("video").getAttribute("src") !== video.video_url) {
    $("video").src = video.video_url;
    $("video").poster = video.thumbnail_url || "";
  }
  $("download").href = ready ? video.video_url : "#";
  $("web-link").href = "/web/" + encodeURIComponent(video.id);
}

async function remixVideo(event) {
  event.preventDefault();
  await guarded($("remix"), async () => {
    const path = "/v1/videos/" + encodeURIComponent(shownId) + "/remix";
    follow(await api("POST", path, { prompt: $("remix-prompt").value }));
    $("remix-prompt").value = "";
    loadList().catch(showError);
  });
}

async function deleteVideo() {
  if (!shownId || !window.confirm(T.confirm_delete)) return;
  await guarded($("delete"), async () => {
    await api("DELETE", "/v1/videos/" + encodeURIComponent(shownId));
    clearTimeout(timer);
    shownId = null;
    $("video").removeAttribute("src");
    $("video-card").hidden = true;
    await loadList();
  });
}

async function loadList() {
  const page = await api("GET", "/v1/videos?limit=10");
  const list = $("videos");
  list.replaceChildren();
  page.data.forEach((video) => list.append(listItem(video)));
  $("list-empty").hidden = page.data.length > 0;
}

function listItem(video) {
  const item = document.createElement("li");
  item.dataset.id = video.id;
  const badge = document.createElement("span");
  badge.className = "badge " + video.status;
  badge.textContent = (T.status[video.status] || video.status) +
    (video.status === "in_progress" ? " " + video.progress + "%" : "");
  const open = document.createElement("button");
  open.type = "button";
  open.textContent = video.prompt;
  open.title = video.id;
  open.addEventListener("click", () => guarded(null, async () => {
    follow(await api("GET", "/v1/videos/" + encodeURIComponent(video.id)));
  }));
  item.append(badge, open);
  return item;
}

async function useKey(event) {
  if (event) event.preventDefault();
  const typed = $("key").value.trim();
  if (typed) localStorage.setItem(KEY, typed);
  if (!apiKey()) return;
  await guarded(null, async () => {
    await loadModels();
    await loadList();
  });
}

function forgetKey() {
  localStorage.removeItem(KEY);
  $("key").value = "";
  $("videos").replaceChildren();
  $("model").replaceChildren();
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = apiKey();
  $("key-form").addEventListener("submit", useKey);
  $("key-forget").addEventListener("click", forgetKey);
  $("model").addEventListener("change", fillChoices);
  $("orientation").addEventListener("change", fillChoices);
  $("create-form").addEventListener("submit", createVideo);
  $("remix-form").addEventListener("submit", remixVideo);
  $("delete").addEventListener("click", deleteVideo);
  $("refresh").addEventListener("click", () => guarded($("refresh"), loadList));
  useKey();
});
