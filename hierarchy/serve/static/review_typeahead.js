// "Review" page, the type-ahead box: "e" (or Enter) opens it over the focused head of the selected
// card; typing filters the taxonomy's names, Enter sets the chosen one, Esc leaves.
// Part of the review page (see review_state.js for the load order); R.name() calls go to later files.
"use strict";

(function () {
  const { el, formatProb, probClass } = window.hx;
  const R = window.hx.review;
  const { ui, state, groupedByParent, cards, focusSelected } = R;

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
    if (name) R.setLabel(rowIndex, head, name);
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

  Object.assign(R, { openTypeahead, closeTypeahead, isTypeaheadOpen: () => ta.open });
})();
