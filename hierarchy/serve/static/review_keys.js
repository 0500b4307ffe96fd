// "Review" page, the keyboard map: arrows move between cards, 1–5 set one of the model's top labels,
// a/Space accept, e/Enter type a label, h/H change the focused head, n/p and PgDn/PgUp turn pages.
// Part of the review page (see review_state.js for the load order); R.name() calls go to later files.
"use strict";

(function () {
  const { isTypingTarget } = window.hx;
  const R = window.hx.review;
  const { ui, state, cards, selectCard, moveSelection, cycleHead, focusSelected, openTypeahead, isTypeaheadOpen } = R;

  document.addEventListener("keydown", (e) => {
    if (isTypeaheadOpen() || ui.toolbar.hidden) return;
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
        R.goPage(1);
        break;
      case "PageUp":
      case "p":
        R.goPage(-1);
        break;
      case "1":
      case "2":
      case "3":
      case "4":
      case "5": {
        const top = row && row.heads[head] && row.heads[head].top;
        const pick = top && top[Number(key) - 1];
        if (pick) R.setLabel(state.selected, head, pick.label);
        break;
      }
      case "a":
      case " ":
        if (row && row.heads[head]) R.acceptLabel(state.selected, head);
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
})();
