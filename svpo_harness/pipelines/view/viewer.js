// svpo view: the page's only script. Model text is data, never markup: every string from the
// embedded JSON reaches the DOM through textContent (never innerHTML), and links are never
// built from it. The index is parsed at load; a question's tree when it is opened.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const INDEX = JSON.parse($("svpo-index").textContent);
  const entries = INDEX.index;
  const state = { current: -1, tree: null, focus: null, selected: null };

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(x) {
    return x === null || x === undefined ? "\u2014" : Number(x).toFixed(3);
  }
  function stat(key, label, value) {
    const s = el("span", "st st-" + key, label ? label + " " + value : value);
    s.dataset.k = key;
    return s;
  }

  // ---- the question list ----------------------------------------------------------------------
  const list = $("qlist");
  const items = entries.map((e, i) => {
    const li = el("li", "q");
    li.dataset.i = String(i);
    li.dataset.q = e.id;
    li.setAttribute("role", "option");
    const head = el("div", "q-head");
    head.append(el("span", "q-id", e.id));
    if (e.correct === true) head.append(el("span", "tag ok", "correct"));
    if (e.correct === false) head.append(el("span", "tag bad", "incorrect"));
    head.append(el("span", "tag" + (e.solved ? " ok" : ""), e.solved ? (INDEX.kind === "search" ? "finished" : "solved") : (INDEX.kind === "search" ? "unfinished" : "unsolved")));
    if (e.pairs) head.append(el("span", "tag", e.pairs + " pairs"));
    li.append(head, el("div", "q-text", e.question));
    if (e.gold !== null || e.answer !== null) {
      li.append(el("div", "q-ans", "answer " + (e.answer === null ? "\u2014" : e.answer) + " \u00b7 gold " + (e.gold === null ? "\u2014" : e.gold)));
    }
    li.addEventListener("click", () => select(i, false));
    return li;
  });
  list.append(...items);
  $("source").textContent = INDEX.sources.join(", ");

  function applyFilters() {
    const words = $("search").value.toLowerCase().trim();
    const solved = $("f-solved").value, correct = $("f-correct").value, pairs = $("f-pairs").checked;
    let shown = 0;
    entries.forEach((e, i) => {
      const ok = (!words || (e.id + " " + e.question).toLowerCase().includes(words)) &&
        (solved === "all" || (solved === "yes") === !!e.solved) &&
        (correct === "all" || (correct === "yes" ? e.correct === true : e.correct === false)) &&
        (!pairs || e.pairs > 0);
      items[i].hidden = !ok;
      shown += ok ? 1 : 0;
    });
    $("count").textContent = shown + " of " + entries.length + " questions";
  }
  ["search", "f-solved", "f-correct", "f-pairs"].forEach((id) => $(id).addEventListener("input", applyFilters));

  // ---- one tree ---------------------------------------------------------------------------
  function loadTree(i) {
    const data = JSON.parse($("svpo-t" + i).textContent);
    const f = Object.fromEntries(data.fields.map((name, k) => [name, k]));
    const ids = data.ids || data.nodes.map((_, k) => k);
    const nodes = data.nodes.map((row, k) => ({ id: ids[k], row, kids: [] }));
    const byId = new Map(nodes.map((n) => [n.id, n]));
    nodes.forEach((n) => { const p = byId.get(n.row[f.parent]); if (p && p !== n) p.kids.push(n); });
    const marks = new Map();
    (data.pairs || []).forEach(([c, r, qc, qr]) => {
      const add = (id, text) => { if (!marks.has(id)) marks.set(id, []); marks.get(id).push(text); };
      add(c, "chosen over #" + r + " (Q " + fmt(qc) + " vs " + fmt(qr) + ")");
      add(r, "rejected for #" + c + " (Q " + fmt(qr) + " vs " + fmt(qc) + ")");
    });
    return { data, f, nodes, byId, marks, onPath: new Set(data.path || []) };
  }

  function nodeStats(t, n) {
    const r = n.row, f = t.f, out = [];
    if (t.data.kind === "tree") {
      out.push(stat("N", "N", r[f.N]), stat("Q", "Q", fmt(r[f.Q])));
      if (r[f.V] !== null) out.push(stat("V", "V", fmt(r[f.V])));
      if (r[f.parent] !== null) out.push(stat("P", "prior", fmt(r[f.prior])));
      if (r[f.terminal]) {
        let end = r[f.terminal];
        if (r[f.answer] !== null) end = "answer " + r[f.answer];
        if (r[f.reward] !== null) end += " (" + (r[f.reward] > 0 ? "+" : "") + r[f.reward] + ")";
        out.push(stat("end", "", end));
      }
      (t.marks.get(n.id) || []).forEach((m) => out.push(stat(m.startsWith("chosen") ? "chosen" : "rejected", "", m)));
    } else if (r[f.status] !== "root") {
      out.push(stat("status", "", r[f.status]), stat("V", "V", fmt(r[f.V])));
      if (r[f.score] !== r[f.V]) out.push(stat("score", "score", fmt(r[f.score])));
      out.push(stat("lp", "logprob", fmt(r[f.logprob])));
      if (r[f.reason]) out.push(stat("end", "", r[f.reason]));
      if (n.id === t.data.chosen) out.push(stat("pick", "", "final pick"));
    }
    return out;
  }

  function drawNode(t, n) {
    const li = el("li", "node");
    li.setAttribute("role", "treeitem");
    const row = el("div", "row");
    row.dataset.node = String(n.id);
    row.tabIndex = -1;
    const r = n.row;
    if (t.data.kind === "search") row.classList.add("s-" + r[t.f.status]);
    if (t.onPath.has(n.id)) row.classList.add("on-path");
    row.append(el("span", "tw", n.kids.length ? "\u25b8" : "\u00b7"), el("span", "nid", "#" + n.id));
    row.append(el("span", "txt", r[t.f.parent] === null ? "(question)" : r[t.f.text]));
    row.append(...nodeStats(t, n));
    row.addEventListener("click", (ev) => {
      if (ev.target.classList.contains("tw")) toggle(row); else { focusRow(row); showDetail(n.id); }
    });
    li.append(row);
    li._node = n;
    return li;
  }

  function expanded(row) { return row.parentNode.classList.contains("open"); }
  function expand(row) {
    const li = row.parentNode, n = li._node;
    if (!n.kids.length || li.classList.contains("open")) return;
    if (!li._kids) {
      const ul = el("ul", "kids");
      ul.setAttribute("role", "group");
      n.kids.forEach((k) => ul.append(drawNode(state.tree, k)));
      li.append(ul);
      li._kids = ul;
    }
    li.classList.add("open");
    row.setAttribute("aria-expanded", "true");
    row.firstChild.textContent = "\u25be";
  }
  function collapse(row) {
    const li = row.parentNode;
    if (!li.classList.contains("open")) return;
    li.classList.remove("open");
    row.setAttribute("aria-expanded", "false");
    row.firstChild.textContent = "\u25b8";
  }
  function toggle(row) { if (expanded(row)) collapse(row); else expand(row); }
  function rowOf(id) { return $("tree").querySelector('.row[data-node="' + Number(id) + '"]'); }
  function expandAll() {
    let rows;
    do {
      rows = [...$("tree").querySelectorAll(".node:not(.open) > .row")].filter((r) => r.parentNode._node.kids.length);
      rows.forEach(expand);
    } while (rows.length);
  }
  function reveal(id) {
    const t = state.tree, chain = [];
    for (let n = t.byId.get(id); n; n = t.byId.get(n.row[t.f.parent])) { chain.unshift(n.id); if (n.row[t.f.parent] === null) break; }
    chain.forEach((k) => expand(rowOf(k)));
    return rowOf(id);
  }

  function focusRow(row) {
    if (!row) return;
    if (state.focus) state.focus.tabIndex = -1;
    row.tabIndex = 0;
    row.focus();
    state.focus = row;
  }

  function showDetail(id) {
    const t = state.tree, n = t.byId.get(id), box = $("detail");
    if (state.selected) state.selected.classList.remove("selected");
    state.selected = rowOf(id);
    if (state.selected) state.selected.classList.add("selected");
    box.replaceChildren();
    const table = el("table", "facts");
    t.data.fields.forEach((name, k) => {
      if (name === "text") return;
      const tr = el("tr");
      tr.dataset.k = name;
      const v = n.row[k];
      tr.append(el("th", null, name), el("td", null, typeof v === "number" && !Number.isInteger(v) ? String(v) : v === null ? "\u2014" : String(v)));
      table.append(tr);
    });
    const chain = [];
    for (let m = n; m; m = t.byId.get(m.row[t.f.parent])) { chain.unshift("#" + m.id); if (m.row[t.f.parent] === null) break; }
    box.append(el("h3", null, "node #" + id), el("div", "path", "path " + chain.join(" \u203a ")));
    box.append(el("pre", "full", n.row[t.f.parent] === null ? entries[state.current].question : n.row[t.f.text]), table);
    (t.marks.get(id) || []).forEach((m) => box.append(el("div", "mark", m)));
  }

  function drawLevels(t) {
    const box = $("levels");
    box.replaceChildren();
    if (t.data.kind !== "search") return;
    const f = t.f, depth = new Map();
    t.nodes.forEach((n) => { if (n.row[f.parent] !== null) { const d = n.row[f.depth]; if (!depth.has(d)) depth.set(d, []); depth.get(d).push(n); } });
    [...depth.keys()].sort((a, b) => a - b).forEach((d) => {
      const line = el("div", "level");
      line.dataset.depth = String(d);
      line.append(el("span", "lv", "level " + d));
      depth.get(d).slice().sort((a, b) => (b.row[f.score] ?? -1e9) - (a.row[f.score] ?? -1e9) || a.id - b.id).forEach((n) => {
        const chip = el("button", "chip s-" + n.row[f.status], "#" + n.id + " " + n.row[f.status] + " " + fmt(n.row[f.V]));
        chip.dataset.node = String(n.id);
        if (n.id === t.data.chosen) chip.classList.add("pick");
        chip.addEventListener("click", () => { focusRow(reveal(n.id)); showDetail(n.id); });
        line.append(chip);
      });
      box.append(line);
    });
    const end = t.data.finished ? "finished" : "not finished (best unfinished beam)";
    box.append(el("div", "final", "final pick #" + t.data.chosen + ", V " + fmt(t.data.value) + ", " + end + (t.data.end_reason ? ", " + t.data.end_reason : "") + ", " + t.data.tokens + " tokens generated"));
  }

  function select(i, all, nodeId) {
    if (i < 0 || i >= entries.length) return;
    if (state.current >= 0) items[state.current].classList.remove("current");
    state.current = i;
    items[i].classList.add("current");
    items[i].setAttribute("aria-selected", "true");
    items[i].scrollIntoView({ block: "nearest" });
    const e = entries[i], t = loadTree(i);
    state.tree = t;
    state.focus = null;
    state.selected = null;
    const head = $("qhead");
    head.replaceChildren(el("h2", null, e.id), el("p", "qfull", e.question));
    if (e.gold !== null || e.answer !== null) head.append(el("p", "qans", "answer " + (e.answer ?? "\u2014") + " \u00b7 gold " + (e.gold ?? "\u2014") + (e.correct === null ? "" : e.correct ? " \u00b7 correct" : " \u00b7 incorrect")));
    $("detail").replaceChildren(el("p", "hint", "Click a node (or press Enter on it) for its full text and numbers."));
    const tree = $("tree");
    tree.replaceChildren(drawNode(t, t.nodes[0]));
    drawLevels(t);
    if (all) expandAll(); else (t.data.path || [0]).forEach((id) => expand(rowOf(id)));
    focusRow(nodeId !== undefined && t.byId.has(nodeId) ? reveal(nodeId) : rowOf(0));
    if (nodeId !== undefined && t.byId.has(nodeId)) showDetail(nodeId);
    if (!all) tree.scrollTop = 0;
    document.body.dataset.loaded = e.id;
  }

  // ---- keyboard -----------------------------------------------------------------------------
  function visibleRows() { return [...$("tree").querySelectorAll(".row")].filter((r) => r.offsetParent !== null); }
  $("tree").addEventListener("keydown", (ev) => {
    const row = state.focus;
    if (!row) return;
    const rows = visibleRows(), k = rows.indexOf(row), n = row.parentNode._node;
    const parent = () => rowOf(n.row[state.tree.f.parent]);
    const act = {
      ArrowDown: () => focusRow(rows[k + 1]),
      ArrowUp: () => focusRow(rows[k - 1]),
      ArrowRight: () => (n.kids.length && !expanded(row) ? expand(row) : focusRow(rows[k + 1])),
      ArrowLeft: () => (expanded(row) ? collapse(row) : focusRow(parent())),
      Home: () => focusRow(rows[0]),
      End: () => focusRow(rows[rows.length - 1]),
      Enter: () => showDetail(n.id),
      " ": () => showDetail(n.id),
      "*": () => expandAll(),
      Escape: () => list.focus(),
    }[ev.key];
    if (act) { ev.preventDefault(); act(); }
  });
  list.addEventListener("keydown", (ev) => {
    const shown = items.filter((li) => !li.hidden), k = shown.indexOf(items[state.current]);
    const go = (m) => { if (shown[m]) { select(Number(shown[m].dataset.i), false); list.focus(); } };
    const act = {
      ArrowDown: () => go(k + 1), j: () => go(k + 1), ArrowUp: () => go(k - 1), k: () => go(k - 1),
      Enter: () => focusRow(state.focus || rowOf(0)), ArrowRight: () => focusRow(state.focus || rowOf(0)),
    }[ev.key];
    if (act) { ev.preventDefault(); act(); }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && document.activeElement !== $("search")) { ev.preventDefault(); $("search").focus(); }
  });

  // ---- deep links: #q=<question id>[&n=<node id>] opens that tree fully expanded ---------------
  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const q = params.get("q");
    if (q === null) return false;
    const i = entries.findIndex((e) => e.id === q);
    if (i < 0) { $("qhead").replaceChildren(el("p", "missing", "no question " + q + " in this page")); return true; }
    const n = params.get("n");
    select(i, true, n === null ? undefined : Number(n));
    return true;
  }
  window.addEventListener("hashchange", fromHash);
  applyFilters();
  if (!fromHash() && entries.length) select(0, false);
  document.body.dataset.ready = "1";
})();
