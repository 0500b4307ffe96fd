// "Review" page, the grid: draws one card per row, keeps the selected card and focused head, shows
// the model's top labels of the focused head in the bottom bar, and handles the mouse on the cards.
// Part of the review page (see review_state.js for the load order); R.name() calls go to later files.
"use strict";

(function () {
  const { el, formatProb, probClass, isTypingTarget } = window.hx;
  const R = window.hx.review;
  const { ui, state } = R;

  const STATUS_TEXT = { corrected: "corrected", accepted: "accepted" };

  // ---------------------------------------------------------------- cards

  function renderGrid(select) {
    R.closeTypeahead(false);
    const fragment = document.createDocumentFragment();
    state.rows.forEach((row) => fragment.append(renderCard(row)));
    ui.grid.replaceChildren(fragment);
    ui.empty.hidden = state.rows.length > 0;
    ui.gridWrap.scrollTop = 0;
    R.renderPager();

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
            R.setLabel(state.selected, head, t.label);
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
      R.acceptLabel(index, headNode.dataset.head);
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
    R.setLabel(index, headNode.dataset.head, e.target.value);
    // Back to the card, so arrow keys move between cards again instead of changing the select.
    focusSelected();
  });

  Object.assign(R, {
    renderGrid, renderHeads, cards, cardFor, selectCard, markFocusedHead, moveSelection, cycleHead, renderInspector,
    focusSelected,
  });
})();
