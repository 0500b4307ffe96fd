// "Label" page, the question on screen: the item's image, the question in words and its choices, each a
// button with its key printed on it; "none of these" opens the type-ahead over every fine label instead.
// Part of the label page (see label_state.js for the load order); L.name() calls go to later files.
"use strict";

(function () {
  const { el, formatPercent, probClass, createTypeahead } = window.hx;
  const L = window.hx.label;
  const { ui, state, imageUrl } = L;

  const MAX_KEYS = 9; // choices past the ninth have no key (a taxonomy with more groups): the mouse picks them

  const typeahead = createTypeahead({
    box: ui.typeahead,
    input: ui.taInput,
    list: ui.taList,
    onChoose: (name) => L.answer(name),
    onCancel: () => ui.question.focus({ preventScroll: true }), // the keys go back to the page
    onClose: () => {
      ui.choices.hidden = false;
    },
  });

  /** "a Shirt", "an Ankle boot": the confirm reads as a sentence. */
  const withArticle = (name) => `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;

  /** The question in words; after a "no", the guess it ruled out on a line of its own above it. */
  function words(q) {
    if (q.kind === "confirm") return [`Is this ${withArticle(q.shown[0])}?`];
    if (q.kind === "coarse") return ["Which group?"];
    const after = state.after ? el("span", { class: "ruled-out", text: `Not ${withArticle(state.after)}.` }) : null;
    return [after, "Which is it?"];
  }

  function note(q) {
    const p = q.prob[q.shown[0]];
    if (q.kind === "confirm") return `The model says ${formatPercent(p)}.`;
    if (q.kind === "choose") return "The likeliest labels first. None of them? Press 0 and type it.";
    return "The garment's group; its own label can come later.";
  }

  /** The choice buttons: a confirm's yes and no; a choose's candidates and "none of these"; a coarse's groups. */
  function choiceButtons(q) {
    if (q.kind === "confirm") {
      return [
        choice("y", "Yes", "yes", { class: "choice yes" }),
        choice("n", "No", "no", { class: "choice no" }),
      ];
    }
    const buttons = q.shown.map((name, i) =>
      choice(i < MAX_KEYS ? String(i + 1) : "", name, name, {
        prob: q.prob[name],
        members: q.kind === "coarse" ? members(name) : "",
      }),
    );
    if (q.kind === "choose") buttons.push(choice("0", "None of these…", "", { class: "choice none", none: true }));
    return buttons;
  }

  /** A group's fine labels, so "outer" or "top" says what it holds. */
  function members(group) {
    const parents = (state.info && state.info.parents) || {};
    return Object.keys(parents).filter((fine) => parents[fine] === group).join(", ");
  }

  function choice(key, text, answer, { prob, members: under = "", none = false, class: cls = "choice" } = {}) {
    const hasProb = Number.isFinite(prob);
    return el(
      "button",
      {
        type: "button",
        class: cls,
        dataset: { answer, key },
        style: hasProb ? { "--p": `${Math.round(prob * 100)}%` } : undefined,
        onclick: () => (none ? openNone() : L.answer(answer)),
      },
      key ? el("kbd", { text: key.toUpperCase() }) : el("span", { class: "kbd-gap" }),
      el("span", { class: "choice-text" }, el("span", { class: "choice-name", text }),
        under ? el("span", { class: "choice-members", text: under }) : null),
      hasProb ? el("span", { class: `choice-prob ${probClass(prob)}`, text: formatPercent(prob) }) : null,
    );
  }

  /** Draw question `q` (a follow-up keeps the image: the same item). */
  function drawQuestion(q) {
    typeahead.close();
    ui.done.hidden = true;
    ui.question.hidden = false;
    ui.stage.hidden = false;
    ui.asking.classList.remove("finished");
    const src = imageUrl(q);
    if (ui.image.getAttribute("src") !== src) {
      ui.stage.classList.add("loading");
      ui.image.setAttribute("src", src);
    }
    ui.image.alt = q.name;
    ui.itemName.textContent = q.name;
    ui.itemName.parentElement.title = q.name;
    ui.words.replaceChildren(...words(q).filter(Boolean));
    ui.note.textContent = note(q);
    ui.choices.replaceChildren(...choiceButtons(q));
    Object.assign(ui.question.dataset, { item: q.item, kind: q.kind, model: q.model, seq: String(state.seq) });
  }

  // Small images (28 px Fashion-MNIST) are shown scaled up with hard pixels rather than a blur.
  ui.image.addEventListener("load", () => {
    ui.stage.classList.remove("loading");
    ui.stage.classList.toggle("pixelated", ui.image.naturalWidth < 160);
  });
  ui.image.addEventListener("error", () => ui.stage.classList.remove("loading"));

  function showDone() {
    typeahead.close();
    ui.question.hidden = true;
    ui.stage.hidden = true;
    ui.done.hidden = false;
    ui.asking.classList.add("finished");
    ui.question.dataset.item = "";
  }

  /** "None of these": the type-ahead over every fine label, those not offered first (and not the guess a "no"
   * just ruled out). */
  function openNone() {
    const q = state.current;
    if (!q || q.kind !== "choose" || state.sending || !state.info) return;
    const names = ((state.info.names && state.info.names.fine) || []).filter((n) => n !== state.after);
    ui.choices.hidden = true;
    typeahead.open({
      names,
      first: names.filter((n) => !q.shown.includes(n)).concat(q.shown),
      parents: state.info.parents || null,
      label: "The fine label",
    });
  }

  Object.assign(L, { drawQuestion, showDone, openNone, isTyping: typeahead.isOpen, MAX_KEYS });
})();
