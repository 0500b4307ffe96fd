// "Label" page, shared part: its elements, its state, the questions fetched ahead and sending an answer.
// The page asks about one item of the pool at a time (hierarchy serve --pool), the most useful question first,
// and is four plain scripts sharing one object, window.hx.label, loaded in this order by label.html:
//   label_state.js     this file: elements, state, questions fetched ahead, sending an answer
//   label_question.js  drawing a question: the image, the words, the choices with their keys, the type-ahead
//   label_status.js    the status line: counts, unreadable files, Train on my answers, the model versions
//   label.js           start-up, the answer flow, the keyboard map
// Each file takes what earlier files made at its top; a call written L.name() goes to a later file.
"use strict";

(function () {
  const { api, postJSON } = window.hx;

  const $ = (id) => document.getElementById(id);
  const ui = {
    statusLine: $("status-line"),
    pool: $("count-pool"),
    broken: $("broken"),
    brokenCount: $("count-broken"),
    brokenList: $("broken-list"),
    answers: $("count-answers"),
    settled: $("count-settled"),
    model: $("count-model"),
    retrain: $("retrain"),
    retrainState: $("retrain-state"),
    noPool: $("no-pool"),
    asking: $("asking"),
    stage: $("stage"),
    image: $("item-image"),
    question: $("question"),
    itemName: $("item-name"),
    words: $("question-words"),
    note: $("question-note"),
    choices: $("choices"),
    typeahead: $("typeahead"),
    taInput: $("typeahead-input"),
    taList: $("typeahead-list"),
    skip: $("skip"),
    saving: $("saving"),
    done: $("done"),
    versions: $("versions"),
    keysHelp: $("keys-help"),
  };

  const AHEAD = 3; // questions held beyond the one on screen, their images loaded: the next one shows at once

  const state = {
    info: null, // /api/info: the fine names and their groups (the type-ahead, the groups' members)
    model: "", // the version whose questions are held; a newer one drops them
    current: null, // the question on screen
    after: "", // the guess a "no" just ruled out, while its follow-up choose is on screen
    shownAt: 0, // performance.now() when the question appeared: the answer's seconds
    ahead: [], // questions fetched ahead, asked next in this order
    generation: 0, // bumped when the held questions are dropped: an older fetch's questions are ignored
    fetching: null, // the fetch in flight (one at a time, so two cannot bring the same item)
    sending: false, // an answer is on its way: keys wait for the next question
    acknowledged: [], // ids of the answers the server stored (it replied 200)
    seq: 0, // questions shown so far (tests and the keys wait on it)
  };

  const imageUrl = (q) => `/pool/${q.index}`;
  const preloaded = new Map(); // index -> Image, kept so the browser does not drop it before it is shown

  /** Keys of the items this page holds: the server leaves them out of the next questions. */
  function heldKeys() {
    return [state.current, ...state.ahead].filter(Boolean).map((q) => q.item);
  }

  /** Top the questions held ahead up to AHEAD (one fetch at a time), their images loading meanwhile. */
  async function fetchAhead() {
    while (state.fetching) await state.fetching.catch(() => {});
    const need = AHEAD + (state.current ? 0 : 1) - state.ahead.length;
    if (need <= 0) return;
    const generation = state.generation;
    const params = new URLSearchParams({ n: String(need), skip: heldKeys().join("\n") });
    state.fetching = api(`/api/queue/next?${params}`);
    let answer;
    try {
      answer = await state.fetching;
    } finally {
      state.fetching = null;
    }
    if (generation !== state.generation) return;
    L.showStatus(answer.status); // may find a newer model, which drops what is held (and these)
    if (generation !== state.generation) return;
    const held = new Set(heldKeys());
    for (const q of answer.questions || []) {
      if (held.has(q.item)) continue;
      state.ahead.push(q);
      held.add(q.item);
    }
    for (const q of state.ahead) preload(q);
  }

  function preload(q) {
    if (preloaded.has(q.index)) return;
    const image = new Image();
    image.src = imageUrl(q);
    preloaded.set(q.index, image);
    if (preloaded.size > 4 * AHEAD) preloaded.delete(preloaded.keys().next().value);
  }

  /** The next question to ask: the first held one, else a fresh fetch; null when the pool has none left. */
  async function takeNext() {
    for (let tries = 0; tries < 3 && !state.ahead.length; tries++) {
      const generation = state.generation;
      await fetchAhead();
      if (generation === state.generation) break; // a fetch of this generation came back: that is all there is
    }
    return state.ahead.shift() || null;
  }

  /** Drop the questions held ahead (a newer model asks its own). */
  function dropAhead() {
    state.generation += 1;
    state.ahead = [];
  }

  /** Store one answer to question `q`; the seconds run from showing it. Resolves to the server's reply. */
  async function send(q, answer) {
    const seconds = Math.max(0.001, (performance.now() - state.shownAt) / 1000);
    const reply = await postJSON("/api/answers", {
      item: q.item,
      kind: q.kind,
      answer,
      shown: q.shown,
      seconds: Math.round(seconds * 1000) / 1000,
    });
    state.acknowledged.push(reply.id);
    document.body.dataset.acknowledged = String(state.acknowledged.length);
    return reply;
  }

  const L = { ui, state, imageUrl, fetchAhead, takeNext, dropAhead, send };
  window.hx.label = L;
})();
