// "Review" page, shared part: the page's elements, its state, the address (filters and page live in
// the URL) and the taxonomy's names. The review page is five plain scripts that share one object,
// window.hx.review, loaded in this order by review.html:
//   review_state.js      this file: elements, state, address, names
//   review_grid.js       the cards: drawing them, the selection, the inspector bar, the mouse
//   review_typeahead.js  the type-ahead box that sets any label by typing part of its name (the box itself is
//                        typeahead.js, loaded before it and shared with the Label page)
//   review_keys.js       the keyboard map
//   review.js            start-up, fetching rows, the pager, saving corrections, the toolbar
// Each file takes what earlier files made at its top; a call written R.name() goes to a later file.
"use strict";

(function () {
  const { el, currentToken } = window.hx;

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

  // ---------------------------------------------------------------- the address

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

  // ---------------------------------------------------------------- taxonomy names

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

  window.hx.review = {
    ui, state, readQueryFromUrl, writeQueryToUrl, clampProb, groupedByParent, appendNameOptions, buildSelectTemplates,
  };
})();
