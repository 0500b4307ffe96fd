// "Review" page, the type-ahead box: "e" (or Enter) opens it over the focused head of the selected
// card; typing filters the taxonomy's names, Enter sets the chosen one, Esc leaves (typeahead.js does the box).
// Part of the review page (see review_state.js for the load order); R.name() calls go to later files.
"use strict";

(function () {
  const { createTypeahead } = window.hx;
  const R = window.hx.review;
  const { ui, state, groupedByParent, cards, focusSelected } = R;

  let editing = { rowIndex: -1, head: "" };
  const box = createTypeahead({
    box: ui.typeahead,
    input: ui.taInput,
    list: ui.taList,
    onChoose: (name) => {
      focusSelected();
      R.setLabel(editing.rowIndex, editing.head, name);
    },
    onCancel: focusSelected,
  });

  function openTypeahead() {
    const row = state.rows[state.selected];
    const head = state.heads[state.headIndex];
    const card = cards()[state.selected];
    if (!row || !head || !card || !row.heads[head]) return;
    editing = { rowIndex: state.selected, head };
    const h = row.heads[head];
    const names = state.names[head] || [];
    box.open({
      names,
      first: likelyFirst(row, head, names),
      parents: groupedByParent(head) ? state.parents : null,
      probs: new Map((h.top || []).map((t) => [t.label, t.prob])),
      current: h.label,
      label: `New ${head} label`,
      anchor: card.querySelector(`.head[data-head="${CSS.escape(head)}"]`) || card,
    });
  }

  /**
   * Before anything is typed: the model's top labels first (the likely answers), then the rest in taxonomy
   * order; after a coarse correction, the fine names of that group come first.
   */
  function likelyFirst(row, head, names) {
    const top = (row.heads[head].top || []).map((t) => t.label).filter((n) => names.includes(n));
    let items = top.concat(names.filter((n) => !top.includes(n)));
    const coarse = row.heads.coarse && row.heads.coarse.label;
    if (coarse && groupedByParent(head)) {
      items = items.filter((n) => state.parents[n] === coarse).concat(items.filter((n) => state.parents[n] !== coarse));
    }
    return items;
  }

  // Keep the box over its head when the grid scrolls.
  ui.gridWrap.addEventListener("scroll", box.reposition, { passive: true });

  Object.assign(R, { openTypeahead, closeTypeahead: box.close, isTypeaheadOpen: box.isOpen });
})();
