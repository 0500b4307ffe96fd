// "Review" page: page through the batch labeler's rows, worst first, and fix or accept labels
// with the keyboard (or mouse). Every change is saved by POST /api/corrections and the card is
// redrawn from the row the server returns, so the page never shows a label the server does not have.
"use strict";

(function () {
  const { api, postJSON, el, showError, formatInt, formatProb, probClass, isTypingTarget, showModelInHeader, currentToken } =
    window.hx;

  const $ = (id) => document.getElementById(id);
  const ui = {
    toolbar: $("toolbar"),
    head: $("filter-head"),
    label: $("filter-label"),
    min: $("min-prob"),
    max: $("max-prob"),
    status: $("status"),
    sort: $("sort"),
    prev: $("prev-page"),
    next: $("next-page"),
    range: $("range-text"),
    total: $("total"),
    busy: $("busy"),
    grid: $("grid"),
    gridWrap: $("grid-wrap"),
    empty: $("empty"),
    noLabels: $("no-labels"),
    statusbar: $("statusbar"),
    inspector: $("inspector"),
    labelsName: $("labels-name"),
    typeahead: $("typeahead"),
    taInput: $("typeahead-input"),
    taList: $("typeahead-list"),
  };

  const PAGE_SIZE = 60;
  const STATUS_TEXT = { corrected: "corrected", accepted: "accepted" };

  const state = {
    info: null,
    heads: [],
    names: {},
    parents: {},
    query: { head: "", label: "", min: 0, max: 1, status: "all", sort: "prob_asc", offset: 0 },
    rows: [],
    total: 0,
    selected: 0, // index of the selected card in state.rows
    headIndex: 0, // focused head (index into state.heads), shared by all cards
    loadSeq: 0,
    controller: null,
    saveChain: Promise.resolve(), // corrections are sent one after another, in key-press order
    selectTemplates: {}, // head -> prebuilt <select> cloned into every card (fast for big taxonomies)
    focusGridAfterLoad: false,
  };

  // ---------------------------------------------------------------- start-up

  async function start() {
    try {
      state.info = await api("/api/info");
    } catch (e) {
      showError(e.message);
      return;
    }
    const info = state.info;
    showModelInHeader(info);
    state.heads = Array.isArray(info.heads) ? info.heads : [];
    state.names = info.names || {};
    state.parents = info.parents || {};

    if (!info.labels) {
      // Nothing to review: explain how to start the server instead of showing an empty grid.
      ui.noLabels.hidden = false;
      $("export-link").hidden = true;
      return;
    }
    ui.labelsName.textContent = String(info.labels).split(/[\\/]/).pop();
    const unreadable = info.unreadable ? ` · ${formatInt(info.unreadable)} unreadable` : "";
    ui.labelsName.title = `Labels: ${info.labels} · ${formatInt(info.rows)} rows${unreadable} · corrections: ${info.db || "?"}`;
    ui.labelsName.hidden = false;

    buildSelectTemplates();
    readQueryFromUrl();
    fillToolbar();
    ui.toolbar.hidden = false;
    ui.statusbar.hidden = false;
    state.focusGridAfterLoad = true;
    await loadRows();
  }

  /** Default head as the server picks it: fine when the model has it, else the first head. */
  function defaultHead() {
    return state.heads.includes("fine") ? "fine" : state.heads[0] || "";
  }

  /** A reload keeps the place: filters and page live in the address (with the token, if any). */
  function readQueryFromUrl() {
    const p = new URLSearchParams(window.location.search);
    const q = state.query;
    q.head = state.heads.includes(p.get("head")) ? p.get("head") : defaultHead();
    q.label = (state.names[q.head] || []).includes(p.get("label")) ? p.get("label") : "";
    q.min = clampProb(p.get("min_prob"), 0);
    q.max = clampProb(p.get("max_prob"), 1);
    if (q.min > q.max) [q.min, q.max] = [0, 1];
    q.status = ["all", "todo", "done"].includes(p.get("status")) ? p.get("status") : "all";
    q.sort = ["prob_asc", "prob_desc", "path"].includes(p.get("sort")) ? p.get("sort") : "prob_asc";
    q.offset = Math.max(0, parseInt(p.get("offset"), 10) || 0);
    state.headIndex = Math.max(0, state.heads.indexOf(q.head));
  }

  function writeQueryToUrl() {
    const q = state.query;
    const p = new URLSearchParams();
    const token = currentToken();
    if (token) p.set("token", token);
    if (q.head !== defaultHead()) p.set("head", q.head);
    if (q.label) p.set("label", q.label);
    if (q.min !== 0) p.set("min_prob", String(q.min));
    if (q.max !== 1) p.set("max_prob", String(q.max));
    if (q.status !== "all") p.set("status", q.status);
    if (q.sort !== "prob_asc") p.set("sort", q.sort);
    if (q.offset) p.set("offset", String(q.offset));
    const search = p.toString();
    history.replaceState(null, "", window.location.pathname + (search ? `?${search}` : ""));
  }

  function clampProb(value, fallback) {
    const v = parseFloat(value);
    return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : fallback;
  }

  /** Is `head` a fine head whose names can be grouped under their coarse parent? */
  function groupedByParent(head) {
    const names = state.names[head] || [];
    return names.length > 0 && Object.keys(state.parents).length > 0 && names.every((n) => n in state.parents);
  }

  /** Options for a head's names; fine names sit in an <optgroup> per coarse parent (easier to scan). */
  function appendNameOptions(select, head) {
    const names = state.names[head] || [];
    if (!groupedByParent(head)) {
      for (const name of names) select.append(el("option", { value: name, text: name }));
      return;
    }
    const groups = new Map();
    for (const name of names) {
      const parent = state.parents[name];
      if (!groups.has(parent)) groups.set(parent, []);
      groups.get(parent).push(name);
    }
    for (const [parent, children] of groups) {
      select.append(el("optgroup", { label: parent }, children.map((name) => el("option", { value: name, text: name }))));
    }
  }

  function buildSelectTemplates() {
    for (const head of state.heads) {
      const select = el("select", { class: "label-select" });
      appendNameOptions(select, head);
      state.selectTemplates[head] = select;
    }
  }

  function fillToolbar() {
    const q = state.query;
    ui.head.replaceChildren(...state.heads.map((h) => el("option", { value: h, text: h })));
    ui.head.value = q.head;
    fillLabelFilter();
    ui.label.value = q.label;
    ui.min.value = String(q.min);
    ui.max.value = String(q.max);
    ui.status.value = q.status;
    ui.sort.value = q.sort;
  }

  function fillLabelFilter() {
    ui.label.replaceChildren(el("option", { value: "", text: "any" }));
    appendNameOptions(ui.label, state.query.head);
  }

  // ---------------------------------------------------------------- loading rows

  /**
   * Fetch the current page. `select` says which card to select afterwards:
   * "first", "last", or a row id to keep (falls back to the first card).
   */
  async function loadRows(select = "first") {
    const q = state.query;
    const params = new URLSearchParams({
      head: q.head,
      label: q.label,
      min_prob: String(q.min),
      max_prob: String(q.max),
      sort: q.sort,
      offset: String(q.offset),
      limit: String(PAGE_SIZE),
      status: q.status,
    });
    const seq = ++state.loadSeq;
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    ui.busy.hidden = false;
    ui.grid.classList.add("loading");
    try {
      const answer = await api(`/api/rows?${params}`, { signal: state.controller.signal });
      if (seq !== state.loadSeq) return;
      // Past the end (the filter shrank the list, or an old address): go to the last page instead.
      if (answer.total > 0 && (answer.rows || []).length === 0 && q.offset > 0) {
        q.offset = Math.max(0, Math.floor((answer.total - 1) / PAGE_SIZE) * PAGE_SIZE);
        return loadRows(select);
      }
      state.rows = answer.rows || [];
      state.total = Number(answer.total) || 0;
      q.offset = Number.isFinite(answer.offset) ? answer.offset : q.offset;
      showError("");
      writeQueryToUrl();
      renderGrid(select);
    } catch (e) {
      if (e.name === "AbortError" || seq !== state.loadSeq) return;
      showError(e.message);
    } finally {
      if (seq === state.loadSeq) {
        ui.busy.hidden = true;
        ui.grid.classList.remove("loading");
      }
    }
  }

  function renderPager() {
    const q = state.query;
    const n = state.rows.length;
    ui.range.textContent = n ? `${formatInt(q.offset + 1)}–${formatInt(q.offset + n)}` : "0";
    ui.total.textContent = formatInt(state.total);
    ui.total.dataset.total = String(state.total);
    ui.prev.disabled = q.offset <= 0;
    ui.next.disabled = q.offset + n >= state.total;
  }

  /**
   * Rows on this page that still match the filter after the corrections made here.
   * With status "to do" (or a label filter) corrected rows drop out of the server's list, so the
   * next page starts that many rows earlier; otherwise "Next" would skip unreviewed rows.
   */
  function rowsStillMatching() {
    const q = state.query;
    return state.rows.filter((row) => {
      const h = row.heads && row.heads[q.head];
      if (!h) return true;
      if (q.label && h.label !== q.label) return false;
      if (q.status === "todo" && h.status !== "model") return false;
      if (q.status === "done" && h.status === "model") return false;
      return true;
    }).length;
  }

  function goPage(delta) {
    const q = state.query;
    if (delta > 0) {
      if (ui.next.disabled) return;
      q.offset += rowsStillMatching();
      loadRows("first");
    } else {
      if (q.offset <= 0) return;
      q.offset = Math.max(0, q.offset - PAGE_SIZE);
      loadRows("first");
    }
  }

  // ---------------------------------------------------------------- cards

  function renderGrid(select) {
    closeTypeahead(false);
    const fragment = document.createDocumentFragment();
    state.rows.forEach((row) => fragment.append(renderCard(row)));
    ui.grid.replaceChildren(fragment);
    ui.empty.hidden = state.rows.length > 0;
    ui.gridWrap.scrollTop = 0;
    renderPager();

    let index = 0;
    if (select === "last") index = state.rows.length - 1;
    else if (typeof select === "number") index = Math.max(0, state.rows.findIndex((r) => r.id === select));
    // Only take the keyboard focus when the user is not busy in a toolbar field.
    const takeFocus = state.focusGridAfterLoad || !isTypingTarget(document.activeElement);
    state.focusGridAfterLoad = false;
    selectCard(Math.max(0, index), { focus: takeFocus, scroll: false });
  }

  function renderCard(row) {
    const thumb = el("img", {
      src: row.thumb || `/thumb/${row.id}`,
      alt: "",
      loading: "lazy",
      decoding: "async",
      onerror: () => thumb.parentElement.classList.add("missing"),
    });
    const card = el(
      "article",
      {
        class: "card",
        dataset: { id: String(row.id) },
        tabindex: "-1",
        "aria-label": `Row ${row.id}: ${row.path}`,
      },
      el("div", { class: "thumb" }, thumb),
      el(
        "div",
        { class: "card-meta" },
        // The path keeps its end (the file name) visible; CSS puts the ellipsis at the start.
        el("div", { class: "path", title: row.path }, el("bdi", { text: row.path })),
        el(
          "div",
          { class: "sub" },
          el("span", { class: "kind", text: row.kind || "" }),
          el("span", { class: "row-id", text: `#${row.id}` }),
          row.image
            ? el("a", { class: "open-original", href: row.image, target: "_blank", rel: "noopener", title: "Open the original photo", text: "original ↗" })
            : null,
        ),
      ),
      renderHeads(row),
    );
    return card;
  }

  function renderHeads(row) {
    const wrap = el("div", { class: "heads" });
    const heads = state.heads.length ? state.heads : Object.keys(row.heads || {});
    for (const head of heads) {
      const h = row.heads && row.heads[head];
      if (!h) continue;
      const select = (state.selectTemplates[head] || el("select", { class: "label-select" })).cloneNode(true);
      const empty = !h.label; // e.g. the fine label cleared by a coarse correction outside its group
      if (!Array.from(select.options).some((o) => o.value === h.label)) {
        // a name the taxonomy lacks is still shown; an empty label asks for a choice
        select.prepend(el("option", { value: h.label, text: empty ? "— choose —" : h.label }));
      }
      select.value = h.label;
      select.setAttribute("aria-label", `${head} label`);
      select.title = `Change the ${head} label`;

      const changed = h.model_label !== undefined && h.model_label !== h.label;
      const modelTitle = `model: ${h.model_label ?? h.label} (${formatProb(h.prob)})`;
      wrap.append(
        el(
          "div",
          { class: "head", dataset: { head, status: h.status || "model" } },
          el(
            "div",
            { class: "head-line" },
            el("span", { class: "head-name", text: head }),
            // textContent stays exactly the label (empty too); CSS shows "no label" for the empty one
            el("span", {
              class: `label${empty ? " empty" : ""}`,
              text: h.label,
              title: empty ? `no ${head} label yet: choose one` : changed ? `${h.label} — ${modelTitle}` : h.label,
            }),
            changed ? el("s", { class: "model-label", text: h.model_label, title: modelTitle }) : null,
            el("span", { class: `prob ${probClass(h.prob)}`, text: formatProb(h.prob), title: `${modelTitle} — model probability` }),
          ),
          el(
            "div",
            { class: "head-controls" },
            select,
            STATUS_TEXT[h.status] ? el("span", { class: `badge ${h.status}`, text: STATUS_TEXT[h.status] }) : null,
            el("button", {
              type: "button",
              class: "accept",
              disabled: empty, // nothing to accept until a label is chosen
              text: "✓",
              title: `Accept “${h.label}” as correct (a)`,
              "aria-label": `Accept ${head} label ${h.label}`,
            }),
          ),
        ),
      );
    }
    return wrap;
  }

  const cards = () => ui.grid.children;
  const cardFor = (id) => ui.grid.querySelector(`.card[data-id="${CSS.escape(String(id))}"]`);

  /** Select a card (and show the focused head ring inside it). */
  function selectCard(index, { focus = true, scroll = true } = {}) {
    const list = cards();
    if (!list.length) {
      renderInspector();
      return;
    }
    index = Math.max(0, Math.min(list.length - 1, index));
    const old = list[state.selected];
    if (old && old !== list[index]) {
      old.classList.remove("selected");
      old.tabIndex = -1;
      old.removeAttribute("aria-current");
    }
    state.selected = index;
    const card = list[index];
    card.classList.add("selected");
    card.tabIndex = 0; // roving tabindex: Tab lands on the selected card
    card.setAttribute("aria-current", "true");
    markFocusedHead();
    if (focus) card.focus({ preventScroll: true });
    if (scroll) card.scrollIntoView({ block: "nearest" });
    renderInspector();
  }

  function markFocusedHead() {
    ui.grid.querySelectorAll(".head.focused").forEach((n) => n.classList.remove("focused"));
    const card = cards()[state.selected];
    const head = state.heads[state.headIndex];
    const node = card && card.querySelector(`.head[data-head="${CSS.escape(head || "")}"]`);
    if (node) node.classList.add("focused");
  }

  /** Cards per grid row, read from the layout (it changes with the window width). */
  function columnCount() {
    const list = cards();
    if (!list.length) return 1;
    const top = list[0].offsetTop;
    let n = 0;
    while (n < list.length && list[n].offsetTop === top) n++;
    return Math.max(1, n);
  }

  function moveSelection(key) {
    const cols = columnCount();
    const delta = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols }[key];
    const target = state.selected + delta;
    if (target < 0 || target >= cards().length) {
      // Down from the last full row still reaches the last card (like a text cursor does).
      if (key === "ArrowDown" && Math.floor(state.selected / cols) < Math.floor((cards().length - 1) / cols)) {
        selectCard(cards().length - 1);
      }
      return;
    }
    selectCard(target);
  }

  function cycleHead(step) {
    if (!state.heads.length) return;
    state.headIndex = (state.headIndex + step + state.heads.length) % state.heads.length;
    markFocusedHead();
    renderInspector();
  }

  /** The bottom bar shows the model's top labels of the focused head: what keys 1–5 will set. */
  function renderInspector() {
    const row = state.rows[state.selected];
    const head = state.heads[state.headIndex];
    const h = row && row.heads && row.heads[head];
    if (!h) {
      ui.inspector.replaceChildren();
      return;
    }
    const chips = (h.top || []).slice(0, 5).map((t, k) =>
      el(
        "button",
        {
          type: "button",
          class: `chip${t.label === h.label ? " current" : ""}`,
          title: `Set ${head} to ${t.label} (${k + 1})`,
          onclick: () => {
            setLabel(state.selected, head, t.label);
            focusSelected();
          },
        },
        el("kbd", { text: String(k + 1) }),
        el("span", { class: "chip-name", text: t.label }),
        el("span", { class: `chip-prob ${probClass(t.prob)}`, text: formatProb(t.prob) }),
      ),
    );
    ui.inspector.replaceChildren(
      el("span", { class: "inspector-title" }, el("strong", { text: head }), ` · #${row.id}`),
      ...chips,
    );
  }

  function focusSelected() {
    const card = cards()[state.selected];
    if (card) card.focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- corrections

  function correct(index, head, body) {
    const row = state.rows[index];
    if (!row || !head) return;
    const payload = { row: row.id, head, ...body };
    const card = cardFor(row.id);
    if (card) card.classList.add("saving");
    // Chained so fast key presses reach the server (and come back) in the order they were made.
    state.saveChain = state.saveChain
      .then(() => postJSON("/api/corrections", payload))
      .then((fresh) => {
        applyRow(fresh);
        showError("");
      })
      .catch((e) => showError(e.message))
      .finally(() => {
        const now = cardFor(row.id);
        if (now) now.classList.remove("saving");
      });
    return state.saveChain;
  }

  function setLabel(index, head, label) {
    return correct(index, head, { label, action: "set" });
  }

  function acceptLabel(index, head) {
    const row = state.rows[index];
    if (row && row.heads[head] && !row.heads[head].label) {
      showError(`There is no ${head} label to accept: choose one first (e, or 1–5).`);
      return;
    }
    return correct(index, head, { action: "accept" });
  }

  /** Redraw one card from the server's row (a fine change also brings the new coarse label). */
  function applyRow(fresh) {
    if (!fresh || fresh.id === undefined) return;
    const index = state.rows.findIndex((r) => r.id === fresh.id);
    if (index < 0) return; // the user has moved to another page meanwhile
    state.rows[index] = fresh;
    const card = cardFor(fresh.id);
    if (!card) return;
    const hadFocus = card.contains(document.activeElement);
    const focusedSelect = hadFocus && document.activeElement.matches(".label-select");
    // Only the heads change; keeping the thumbnail element avoids a flicker.
    card.querySelector(".heads").replaceWith(renderHeads(fresh));
    if (index === state.selected) {
      markFocusedHead();
      renderInspector();
    }
    if (hadFocus && !focusedSelect) card.focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- type-ahead

  const ta = { open: false, head: "", rowIndex: -1, items: [], active: 0, anchor: null };

  function openTypeahead() {
    const row = state.rows[state.selected];
    const head = state.heads[state.headIndex];
    const card = cards()[state.selected];
    if (!row || !head || !card || !row.heads[head]) return;
    const anchor = card.querySelector(`.head[data-head="${CSS.escape(head)}"]`) || card;
    ta.open = true;
    ta.head = head;
    ta.rowIndex = state.selected;
    ta.anchor = anchor;
    ui.taInput.value = "";
    ui.taInput.setAttribute("aria-label", `New ${head} label`);
    ui.typeahead.hidden = false;
    positionTypeahead(anchor);
    filterTypeahead();
    ui.taInput.focus({ preventScroll: true });
  }

  /** Place the box over the head being edited, kept inside the window. */
  function positionTypeahead(anchor) {
    const r = anchor.getBoundingClientRect();
    const box = ui.typeahead;
    const width = Math.max(r.width, 280);
    const left = Math.min(Math.max(8, r.left), window.innerWidth - width - 8);
    box.style.width = `${width}px`;
    box.style.left = `${left + window.scrollX}px`;
    const height = box.offsetHeight || 320;
    let top = r.top;
    if (top + height > window.innerHeight - 8) top = Math.max(8, window.innerHeight - height - 8);
    box.style.top = `${top + window.scrollY}px`;
  }

  /**
   * Names matching what was typed: prefix matches first, then word starts, then anywhere;
   * a fine name also matches through its coarse parent. With nothing typed the model's top
   * labels come first (the likely answers), then the rest in taxonomy order.
   */
  function filterTypeahead() {
    const head = ta.head;
    const names = state.names[head] || [];
    const row = state.rows[ta.rowIndex];
    const h = row && row.heads[head];
    const query = ui.taInput.value.trim().toLowerCase();
    let items;
    if (!query) {
      const top = ((h && h.top) || []).map((t) => t.label).filter((n) => names.includes(n));
      items = top.concat(names.filter((n) => !top.includes(n)));
      // After a coarse correction the fine names of that coarse group are the likely answers.
      const coarse = row && row.heads.coarse && row.heads.coarse.label;
      if (coarse && groupedByParent(head)) {
        items = items.filter((n) => state.parents[n] === coarse).concat(items.filter((n) => state.parents[n] !== coarse));
      }
    } else {
      const rank = (name) => {
        const n = name.toLowerCase();
        if (n.startsWith(query)) return 0;
        if (n.split(/[\s/_\-()]+/).some((w) => w.startsWith(query))) return 1;
        if (n.includes(query)) return 2;
        const parent = (state.parents[name] || "").toLowerCase();
        if (groupedByParent(head) && parent.includes(query)) return 3;
        return -1;
      };
      items = names
        .map((name, i) => [rank(name), i, name])
        .filter(([r]) => r >= 0)
        .sort((a, b) => a[0] - b[0] || a[1] - b[1])
        .map(([, , name]) => name);
    }
    ta.items = items;
    ta.active = 0;
    const probs = new Map(((h && h.top) || []).map((t) => [t.label, t.prob]));
    const showParent = groupedByParent(head);
    ui.taList.replaceChildren(
      ...items.map((name, i) =>
        el(
          "li",
          {
            id: `ta-item-${i}`,
            role: "option",
            class: `ta-item${h && name === h.label ? " current" : ""}`,
            dataset: { value: name },
            // mousedown (not click) so the input does not blur and close the box first
            onmousedown: (e) => {
              e.preventDefault();
              chooseTypeahead(name);
            },
          },
          el("span", { class: "ta-name", text: name }),
          showParent && state.parents[name] ? el("span", { class: "ta-parent", text: state.parents[name] }) : null,
          probs.has(name) ? el("span", { class: `ta-prob ${probClass(probs.get(name))}`, text: formatProb(probs.get(name)) }) : null,
        ),
      ),
    );
    if (!items.length) ui.taList.append(el("li", { class: "ta-empty", text: "No label matches" }));
    markActive();
  }

  function markActive() {
    Array.from(ui.taList.children).forEach((li, i) => li.setAttribute("aria-selected", String(i === ta.active)));
    const active = ui.taList.children[ta.active];
    if (active && ta.items.length) {
      ui.taInput.setAttribute("aria-activedescendant", active.id);
      active.scrollIntoView({ block: "nearest" });
    } else {
      ui.taInput.removeAttribute("aria-activedescendant");
    }
  }

  function chooseTypeahead(name) {
    const { rowIndex, head } = ta;
    closeTypeahead(true);
    if (name) setLabel(rowIndex, head, name);
  }

  function closeTypeahead(refocus) {
    if (!ta.open) return;
    ta.open = false;
    ui.typeahead.hidden = true;
    if (refocus) focusSelected();
  }

  ui.taInput.addEventListener("input", filterTypeahead);
  ui.taInput.addEventListener("keydown", (e) => {
    const n = ta.items.length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (n) ta.active = (ta.active + (e.key === "ArrowDown" ? 1 : -1) + n) % n;
      markActive();
    } else if (e.key === "PageDown" || e.key === "PageUp") {
      e.preventDefault();
      if (n) ta.active = Math.max(0, Math.min(n - 1, ta.active + (e.key === "PageDown" ? 8 : -8)));
      markActive();
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (n) chooseTypeahead(ta.items[ta.active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      closeTypeahead(true);
    } else if (e.key === "Tab") {
      e.preventDefault(); // keep the keyboard in the box; Esc leaves
    }
    e.stopPropagation(); // the grid shortcuts must not see typing
  });
  ui.taInput.addEventListener("blur", () => closeTypeahead(false));
  // Keep the box over its head when the grid scrolls or the window changes size.
  const follow = () => ta.open && ta.anchor && ta.anchor.isConnected && positionTypeahead(ta.anchor);
  ui.gridWrap.addEventListener("scroll", follow, { passive: true });
  window.addEventListener("resize", follow);

  // ---------------------------------------------------------------- keyboard

  document.addEventListener("keydown", (e) => {
    if (ta.open || ui.toolbar.hidden) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return; // leave browser shortcuts alone
    const target = e.target;
    if (isTypingTarget(target)) {
      // Esc leaves a toolbar/card field and gives the keys back to the grid.
      if (e.key === "Escape") {
        target.blur();
        focusSelected();
      }
      return;
    }
    // Enter/Space on a focused button or link is that control's own click.
    if ((e.key === "Enter" || e.key === " ") && target instanceof Element && target.closest("button, a")) return;
    if (!state.rows.length && !["PageDown", "PageUp", "n", "p", "N", "P"].includes(e.key)) return;

    const head = state.heads[state.headIndex];
    const row = state.rows[state.selected];
    let handled = true;
    // Letters work with Caps Lock too; only "H" (Shift+h) has its own meaning.
    const key = e.key.length === 1 && e.key !== "H" ? e.key.toLowerCase() : e.key;
    switch (key) {
      case "ArrowLeft":
      case "ArrowRight":
      case "ArrowUp":
      case "ArrowDown":
        moveSelection(e.key);
        break;
      case "Home":
        selectCard(0);
        break;
      case "End":
        selectCard(cards().length - 1);
        break;
      case "PageDown":
      case "n":
        goPage(1);
        break;
      case "PageUp":
      case "p":
        goPage(-1);
        break;
      case "1":
      case "2":
      case "3":
      case "4":
      case "5": {
        const top = row && row.heads[head] && row.heads[head].top;
        const pick = top && top[Number(key) - 1];
        if (pick) setLabel(state.selected, head, pick.label);
        break;
      }
      case "a":
      case " ":
        if (row && row.heads[head]) acceptLabel(state.selected, head);
        break;
      case "e":
      case "Enter":
        openTypeahead();
        break;
      case "h":
        cycleHead(1);
        break;
      case "H":
        cycleHead(-1);
        break;
      default:
        handled = false;
    }
    if (handled) e.preventDefault(); // no page scroll on arrows/Space/PageDown
  });

  // ---------------------------------------------------------------- mouse

  ui.grid.addEventListener("click", (e) => {
    const card = e.target.closest(".card");
    if (!card) return;
    const index = Array.prototype.indexOf.call(cards(), card);
    if (index < 0) return;
    // Clicking inside a head makes it the focused head, so keys then act on it.
    const headNode = e.target.closest(".head");
    if (headNode && state.heads.includes(headNode.dataset.head)) state.headIndex = state.heads.indexOf(headNode.dataset.head);
    const onControl = e.target.closest("select, a");
    selectCard(index, { focus: !onControl });
    if (e.target.closest("button.accept") && headNode) {
      acceptLabel(index, headNode.dataset.head);
      focusSelected();
    }
  });

  ui.grid.addEventListener("change", (e) => {
    if (!e.target.matches(".label-select")) return;
    const card = e.target.closest(".card");
    const headNode = e.target.closest(".head");
    const index = Array.prototype.indexOf.call(cards(), card);
    if (index < 0 || !headNode) return;
    state.headIndex = Math.max(0, state.heads.indexOf(headNode.dataset.head));
    selectCard(index, { focus: false, scroll: false });
    setLabel(index, headNode.dataset.head, e.target.value);
    // Back to the card, so arrow keys move between cards again instead of changing the select.
    focusSelected();
  });

  // ---------------------------------------------------------------- toolbar

  function filtersChanged() {
    state.query.offset = 0;
    loadRows("first");
  }

  ui.head.addEventListener("change", () => {
    state.query.head = ui.head.value;
    state.query.label = "";
    fillLabelFilter();
    ui.label.value = "";
    state.headIndex = Math.max(0, state.heads.indexOf(state.query.head));
    state.focusGridAfterLoad = true;
    filtersChanged();
  });
  ui.label.addEventListener("change", () => {
    state.query.label = ui.label.value;
    state.focusGridAfterLoad = true;
    filtersChanged();
  });
  ui.status.addEventListener("change", () => {
    state.query.status = ui.status.value;
    state.focusGridAfterLoad = true;
    filtersChanged();
  });
  ui.sort.addEventListener("change", () => {
    state.query.sort = ui.sort.value;
    state.focusGridAfterLoad = true;
    filtersChanged();
  });

  function probChanged(which) {
    const q = state.query;
    let min = clampProb(ui.min.value, 0);
    let max = clampProb(ui.max.value, 1);
    // Keep the range valid by moving the other end, not by refusing the edit.
    if (min > max) {
      if (which === "min") max = min;
      else min = max;
    }
    ui.min.value = String(min);
    ui.max.value = String(max);
    if (min === q.min && max === q.max) return;
    q.min = min;
    q.max = max;
    filtersChanged();
  }
  ui.min.addEventListener("change", () => probChanged("min"));
  ui.max.addEventListener("change", () => probChanged("max"));
  for (const input of [ui.min, ui.max]) {
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        probChanged(input === ui.min ? "min" : "max");
      }
    });
  }

  ui.prev.addEventListener("click", () => goPage(-1));
  ui.next.addEventListener("click", () => goPage(1));

  // A dismissed page (bfcache) may come back with stale rows; reload them.
  window.addEventListener("pageshow", (e) => {
    if (e.persisted && state.info && state.info.labels) loadRows(state.rows[state.selected] ? state.rows[state.selected].id : "first");
  });

  start();
})();
