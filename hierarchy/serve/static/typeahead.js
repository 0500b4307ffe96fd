// The type-ahead over a taxonomy's names, shared by the Review page (over a card's head) and the Label page
// (after "none of these"): typing filters the names, arrows move, Enter picks, Esc cancels. The page owns the
// box's elements and says what a pick does; this file only filters, draws the list and reads the keys.
// Loaded after common.js; sets window.hx.createTypeahead.
"use strict";

(function () {
  const { el, formatProb, probClass } = window.hx;

  /**
   * Names matching `query`: prefix matches first, then word starts, then anywhere; with `parents`, a name also
   * matches through its parent group. Ties keep the taxonomy's order.
   */
  function matching(names, query, parents) {
    const rank = (name) => {
      const n = name.toLowerCase();
      if (n.startsWith(query)) return 0;
      if (n.split(/[\s/_\-()]+/).some((w) => w.startsWith(query))) return 1;
      if (n.includes(query)) return 2;
      if (parents && (parents[name] || "").toLowerCase().includes(query)) return 3;
      return -1;
    };
    return names
      .map((name, i) => [rank(name), i, name])
      .filter(([r]) => r >= 0)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .map(([, , name]) => name);
  }

  /**
   * One type-ahead on a page. `box`, `input`, `list`: its elements; `onChoose(name)` after a pick (the box is
   * closed first), `onCancel()` after Esc. A blur closes it without either: the user went elsewhere on purpose.
   * `onClose()`, if given, runs whenever the box closes, whatever the reason.
   */
  function createTypeahead({ box, input, list, onChoose, onCancel, onClose = null }) {
    const ta = { open: false, names: [], first: [], parents: null, probs: new Map(), current: "", items: [],
      active: 0, anchor: null };

    /**
     * Open over `anchor` (or where the box sits, without one). `names`: every name, in the taxonomy's order;
     * `first`: the order shown before anything is typed (the likely answers first); `parents`: name → group, to
     * show and match (null: none); `probs`: name → the model's probability; `current`: the label it has now.
     */
    function open({ names, first = names, parents = null, probs = new Map(), current = "", label = "Label", anchor = null }) {
      Object.assign(ta, { open: true, names, first, parents, probs, current, anchor });
      input.value = "";
      input.setAttribute("aria-label", label);
      box.hidden = false;
      reposition();
      filter();
      input.focus({ preventScroll: true });
    }

    /** Place the box over its anchor, kept inside the window. */
    function reposition() {
      if (!ta.open || !ta.anchor || !ta.anchor.isConnected) return;
      const r = ta.anchor.getBoundingClientRect();
      const width = Math.max(r.width, 280);
      const left = Math.min(Math.max(8, r.left), window.innerWidth - width - 8);
      box.style.width = `${width}px`;
      box.style.left = `${left + window.scrollX}px`;
      const height = box.offsetHeight || 320;
      let top = r.top;
      if (top + height > window.innerHeight - 8) top = Math.max(8, window.innerHeight - height - 8);
      box.style.top = `${top + window.scrollY}px`;
    }

    function filter() {
      const query = input.value.trim().toLowerCase();
      ta.items = query ? matching(ta.names, query, ta.parents) : ta.first;
      ta.active = 0;
      list.replaceChildren(
        ...ta.items.map((name, i) =>
          el(
            "li",
            {
              id: `${list.id}-${i}`,
              role: "option",
              class: `ta-item${name === ta.current ? " current" : ""}`,
              dataset: { value: name },
              // mousedown (not click) so the input does not blur and close the box first
              onmousedown: (e) => {
                e.preventDefault();
                choose(name);
              },
            },
            el("span", { class: "ta-name", text: name }),
            ta.parents && ta.parents[name] ? el("span", { class: "ta-parent", text: ta.parents[name] }) : null,
            ta.probs.has(name) ? el("span", { class: `ta-prob ${probClass(ta.probs.get(name))}`, text: formatProb(ta.probs.get(name)) }) : null,
          ),
        ),
      );
      if (!ta.items.length) list.append(el("li", { class: "ta-empty", text: "No label matches" }));
      markActive();
    }

    function markActive() {
      Array.from(list.children).forEach((li, i) => li.setAttribute("aria-selected", String(i === ta.active)));
      const active = list.children[ta.active];
      if (active && ta.items.length) {
        input.setAttribute("aria-activedescendant", active.id);
        active.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function close() {
      if (!ta.open) return false;
      ta.open = false;
      box.hidden = true;
      if (onClose) onClose();
      return true;
    }

    function choose(name) {
      close();
      if (name) onChoose(name);
    }

    input.addEventListener("input", filter);
    input.addEventListener("keydown", (e) => {
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
        if (n) choose(ta.items[ta.active]);
      } else if (e.key === "Escape") {
        e.preventDefault();
        if (close()) onCancel();
      } else if (e.key === "Tab") {
        e.preventDefault(); // keep the keyboard in the box; Esc leaves
      }
      e.stopPropagation(); // the page's shortcuts must not see typing
    });
    input.addEventListener("blur", close);
    window.addEventListener("resize", reposition);

    return { open, close, reposition, isOpen: () => ta.open };
  }

  window.hx.createTypeahead = createTypeahead;
})();
