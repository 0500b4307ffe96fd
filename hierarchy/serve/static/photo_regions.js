// "One photo" page, the answer on screen: a coloured box over the photo for every region the model
// found, and beside it the list of regions with the top 5 labels of every head.
// Part of the photo page (see photo_state.js for the load order); P.name() calls go to later files.
"use strict";

(function () {
  const { el, formatPercent, probClass } = window.hx;
  const P = window.hx.photo;
  const { state, headOrder, mainHead, colourOf } = P;
  const { photo, overlay, regionsBox, regionCount } = P.dom;

  // ---------------------------------------------------------------- overlay boxes

  /** Keep the overlay exactly over the displayed image, whatever size CSS gave it. */
  function placeOverlay() {
    Object.assign(overlay.style, {
      left: `${photo.offsetLeft}px`,
      top: `${photo.offsetTop}px`,
      width: `${photo.offsetWidth}px`,
      height: `${photo.offsetHeight}px`,
    });
  }
  new ResizeObserver(placeOverlay).observe(photo);

  /** Box in server pixels -> CSS percentages of the overlay (so it scales with the image). */
  function boxStyle(box) {
    const { width, height } = state.result;
    const [x1, y1, x2, y2] = box;
    return {
      left: `${(100 * x1) / width}%`,
      top: `${(100 * y1) / height}%`,
      width: `${(100 * (x2 - x1)) / width}%`,
      height: `${(100 * (y2 - y1)) / height}%`,
    };
  }

  function boxCaption(region) {
    const head = mainHead(region.heads);
    const pred = head && region.heads[head];
    return pred ? `${region.kind} · ${pred.label} ${formatPercent(pred.prob)}` : region.kind;
  }

  function renderOverlay() {
    overlay.replaceChildren();
    if (!state.result) return;
    const entries = state.result.regions.map((r, i) => [i, r]);
    if (state.manual) entries.push(["manual", state.manual]);
    for (const [index, region] of entries) {
      const box = el(
        "div",
        {
          class: `box${index === "manual" ? " manual" : ""}${index === state.selected ? " selected" : ""}`,
          dataset: { index: String(index), kind: region.kind },
          style: { ...boxStyle(region.box), "--c": colourOf(index) },
          title: `${boxCaption(region)} — click to adjust this crop`,
          onclick: () => P.startCrop(index),
        },
        el("span", { class: "box-label", text: boxCaption(region) }),
      );
      overlay.append(box);
    }
    placeOverlay();
  }

  // ---------------------------------------------------------------- region list

  function renderHeads(heads) {
    const wrap = el("div", { class: "heads" });
    for (const name of headOrder(heads)) {
      const pred = heads[name];
      const list = el("ol", { class: "top-list" });
      (pred.top || []).slice(0, 5).forEach((t, k) => {
        const pct = Math.max(0, Math.min(1, Number(t.prob) || 0));
        list.append(
          el(
            "li",
            { class: `top-item${k === 0 ? " first" : ""}` },
            el("span", { class: "top-name", text: t.label, title: t.label }),
            el("span", { class: "bar" }, el("span", { class: `bar-fill ${probClass(t.prob)}`, style: { width: `${pct * 100}%` } })),
            el("span", { class: "top-prob", text: formatPercent(t.prob) }),
          ),
        );
      });
      wrap.append(
        el(
          "section",
          { class: "head", dataset: { head: name } },
          el(
            "div",
            { class: "head-title" },
            el("span", { class: "head-name", text: name }),
            el("span", { class: `label ${probClass(pred.prob)}`, text: pred.label }),
          ),
          list,
        ),
      );
    }
    return wrap;
  }

  function renderRegion(index, region) {
    const [x1, y1, x2, y2] = region.box.map((v) => Math.round(v));
    const details = [`${x2 - x1}×${y2 - y1} px at ${x1},${y1}`];
    if (region.kind !== "manual" && region.kind !== "image" && Number.isFinite(region.conf)) {
      details.unshift(`detector ${formatPercent(region.conf)}`);
    }
    const item = el(
      "article",
      {
        class: `region${index === "manual" ? " manual" : ""}${index === state.selected ? " selected" : ""}`,
        dataset: { kind: region.kind, index: String(index) },
        tabindex: "0",
        title: "Click to adjust this crop",
        onclick: (e) => {
          if (!e.target.closest("button")) P.startCrop(index);
        },
        onkeydown: (e) => {
          if (e.key === "Enter" && e.target === item) P.startCrop(index);
        },
        onmouseenter: () => highlight(index, true),
        onmouseleave: () => highlight(index, false),
      },
      el(
        "header",
        { class: "region-head" },
        el("span", { class: "swatch", style: { background: colourOf(index) } }),
        el("strong", { class: "region-kind", text: index === "manual" ? "manual crop" : region.kind }),
        el("span", { class: "muted region-details", text: details.join(" · ") }),
        el("button", {
          type: "button",
          class: "btn btn-small adjust",
          text: "Adjust crop",
          onclick: () => P.startCrop(index),
        }),
      ),
      renderHeads(region.heads),
    );
    return item;
  }

  function renderList() {
    regionsBox.replaceChildren();
    if (!state.result) return;
    const n = state.result.regions.length;
    regionCount.textContent = n ? `${n}` : "";
    if (state.manual) regionsBox.append(renderRegion("manual", state.manual));
    if (!n) {
      regionsBox.append(
        el("p", { class: "empty-note", text: "The model found no region in this photo. Use “Adjust crop” to draw one and ask again." }),
      );
    }
    state.result.regions.forEach((r, i) => regionsBox.append(renderRegion(i, r)));
  }

  function renderAll() {
    renderOverlay();
    renderList();
  }

  function highlight(index, on) {
    const box = overlay.querySelector(`.box[data-index="${index}"]`);
    if (box) box.classList.toggle("hover", on);
  }

  Object.assign(P, { placeOverlay, renderAll });
})();
