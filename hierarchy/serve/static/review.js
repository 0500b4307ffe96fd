// "Review" page: page through the batch labeler's rows, worst first, and fix or accept labels
// with the keyboard (or mouse). Every change is saved by POST /api/corrections and the card is
// redrawn from the row the server returns, so the page never shows a label the server does not have.
// This file starts the page, fetches rows, runs the pager, saves corrections and wires the toolbar;
// the other parts load before it (review.html): review_state.js (elements, state, address, names),
// review_grid.js (cards, selection, mouse), review_typeahead.js, review_keys.js (keyboard map).
"use strict";

(function () {
  const { api, postJSON, el, showError, formatInt, showModelInHeader } = window.hx;
  const R = window.hx.review;
  const { ui, state, readQueryFromUrl, writeQueryToUrl, clampProb, appendNameOptions, buildSelectTemplates } = R;
  const { renderGrid, renderHeads, cardFor, markFocusedHead, renderInspector } = R;

  const PAGE_SIZE = 60;

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
      document.getElementById("export-link").hidden = true;
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

  Object.assign(R, { renderPager, goPage, setLabel, acceptLabel });

  start();
})();
