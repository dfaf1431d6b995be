// cardsorter operator view: plain JS, no build step, every asset served by the sorter itself.
"use strict";

const page = location.pathname.replace(/^\//, "") || "live";
let csrf = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  return r.json();
}

async function post(url, body) {
  const r = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || data.message || r.statusText);
  return data;
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

// --- live --------------------------------------------------------------------------------
let frameSeq = 0;
async function nextFrame() {
  // fetch, not <img src>: the answer's X-Frame-Seq says which frame this was, so the next request waits
  // for a newer one (the server sends each frame once, at web.frame_fps, encoded once for every browser)
  try {
    const r = await fetch(`/api/frame.jpg?after=${frameSeq}`, { credentials: "same-origin" });
    if (!r.ok) throw new Error(r.statusText);
    frameSeq = Number(r.headers.get("X-Frame-Seq")) || frameSeq;
    const img = document.getElementById("frame");
    const old = img.src;
    img.src = URL.createObjectURL(await r.blob());
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    document.getElementById("frame-caption").textContent = "camera (annotated by the overlay node)";
    setTimeout(nextFrame, 0);
  } catch (e) { setTimeout(nextFrame, 1000); }
}

async function refreshLive() {
  try {
    const s = await getJSON("/api/live");
    document.getElementById("sorter-state").textContent = s.sorter_state ? `sorter: ${s.sorter_state}` : "";
    document.getElementById("review-count").textContent = s.review_open || "";
    if (page === "live") {
      fillRows(document.querySelector("#tracks tbody"), s.tracks.map((t) => [
        t.track_id, t.state, t.name || t.card_id || "—", t.confidence.toFixed(2), `${t.agreeing_views}/${t.views}`]));
      fillRows(document.querySelector("#bins tbody"), Object.entries(s.bins));
      document.getElementById("throughput").textContent = `${s.sorted} sorted, ${Math.round(s.cards_per_hour)} cards/h`;
      document.getElementById("health").replaceChildren(...s.health.map((h) =>
        el("li", { class: `lvl-${h.level}` }, `${h.name}: ${h.message}`)));
    }
  } catch (e) { /* the sorter may be restarting: try again */ }
  setTimeout(refreshLive, 1000);
}

function setupLive() {
  for (const b of document.querySelectorAll("[data-command]")) {
    b.addEventListener("click", async () => {
      const out = document.getElementById("command-result");
      try { out.textContent = (await post("/api/command", { command: b.dataset.command })).message; }
      catch (e) { out.textContent = `failed: ${e.message}`; }
    });
  }
  nextFrame();
}

// --- review ------------------------------------------------------------------------------
function candidateCard(item, c) {
  return el("div", { class: "cand", title: `distance ${c.distance_cos.toFixed(3)}`, "data-card": c.card_id,
                     onclick: () => resolve(item, { card_id: c.card_id }) },
    el("img", { src: `/api/cards/${encodeURIComponent(c.card_id)}/image`, alt: c.card_id, loading: "lazy" }),
    `${c.name} · ${c.set_id} ${c.number}`);
}

async function resolve(item, body) {
  try {
    await post(`/api/review/${item.item_id}/resolve`, body);
  } catch (e) { alert(`could not resolve: ${e.message}`); }
  refreshReview();
}

function reviewItem(item) {
  const results = el("div", { class: "results" });
  const search = el("input", { type: "search", placeholder: "search the catalogue: name, set or number", class: "card-search" });
  search.addEventListener("input", async () => {
    const q = search.value.trim();
    if (q.length < 2) { results.replaceChildren(); return; }
    const { cards } = await getJSON(`/api/cards?q=${encodeURIComponent(q)}`);
    results.replaceChildren(...cards.map((c) => el("button", { "data-card": c.card_id,
      onclick: () => resolve(item, { card_id: c.card_id }) }, `${c.name} (${c.set_id} ${c.number})`)));
  });
  const body = el("div", {},
    el("div", {}, el("strong", {}, `track ${item.track_id}`), ` · ${item.bin} #${item.position_in_bin} · `,
      el("span", { class: "why" }, `${item.status}: ${item.reason}`)));
  if (item.open) {
    const field = (name, label) => el("input", { name, placeholder: label, size: name === "name" ? 18 : 8 });
    const form = el("form", { class: "new-card" }, "Not in the catalogue? Add it: ",
      field("card_id", "card id"), field("name", "name"), field("set_id", "set"), field("number", "number"),
      el("button", { type: "submit" }, "add and enrol"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const card = Object.fromEntries(new FormData(form));
      resolve(item, { new_card: card });
    });
    body.append(el("div", { class: "cands" }, ...item.candidates.map((c) => candidateCard(item, c))),
      el("div", { class: "search" }, search, " ",
        el("button", { class: "mark-unknown", onclick: () => resolve(item, { unknown: true }) }, "mark unknown")),
      results, form);
  } else {
    body.append(el("div", { class: "done-msg" }, `${item.resolution}: ${item.message}`));
  }
  return el("div", { class: `item${item.open ? "" : " done"}`, "data-item": item.item_id },
    item.has_crop ? el("img", { class: "crop", src: `/api/review/${item.item_id}/crop.jpg`, alt: "crop" })
                  : el("div", {}, "no crop"),
    body);
}

async function refreshReview() {
  const all = document.getElementById("review-all").checked ? "1" : "0";
  const { items } = await getJSON(`/api/review?all=${all}`);
  const box = document.getElementById("review-items");
  const typing = box.contains(document.activeElement);
  if (!typing) box.replaceChildren(...(items.length ? items.map(reviewItem) : [el("p", {}, "Nothing to review.")]));
}

function setupReview() {
  document.getElementById("review-all").addEventListener("change", refreshReview);
  refreshReview();
  setInterval(refreshReview, 3000);
}

// --- inventory ---------------------------------------------------------------------------
async function refreshInventory() {
  const form = document.getElementById("inventory-filter");
  const params = new URLSearchParams(new FormData(form));
  const inv = await getJSON(`/api/inventory?${params}`);
  for (const [name, values] of [["session", inv.sessions], ["bin", inv.bins], ["set", inv.sets]]) {
    const sel = form.elements[name];
    const keep = sel.value;
    sel.replaceChildren(el("option", { value: "" }, "all"), ...values.map((v) => el("option", { value: v }, v)));
    sel.value = keep;
  }
  document.getElementById("inventory-summary").textContent =
    `${inv.total} cards match (${inv.rows.length} shown); ${inv.rejected} in the reject bin`;
  fillRows(document.querySelector("#inventory-rows tbody"), inv.rows.map((r) => [
    r.id, r.session_id, r.name || "—", r.set_id, r.number, r.finish || "—", r.status, r.bin, r.position_in_bin, r.reason]));
}

function setupInventory() {
  const form = document.getElementById("inventory-filter");
  form.addEventListener("input", refreshInventory);
  form.addEventListener("submit", (e) => { e.preventDefault(); refreshInventory(); });
  refreshInventory();
  setInterval(refreshInventory, 5000);
}

// --- start -------------------------------------------------------------------------------
async function start() {
  csrf = (await getJSON("/api/session")).csrf;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  document.getElementById(page).hidden = false;
  ({ live: setupLive, review: setupReview, inventory: setupInventory })[page]();
  refreshLive();
}
start();
