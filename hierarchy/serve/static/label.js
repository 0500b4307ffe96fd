// "Label" page: the pool's questions one at a time, the most useful first, answered with one key. Each answer is
// stored by POST /api/answers before the next question shows (so the page never counts an answer the server
// lacks); the next is already fetched, its image loaded. A "no" to a guess is followed at once by the choose the
// server sends back for the same item. This file starts the page, runs the answer flow and maps the keys; the
// other parts load before it (label.html): label_state.js, label_question.js, label_status.js.
"use strict";

(function () {
  const { api, showError, showModelInHeader, isTypingTarget } = window.hx;
  const L = window.hx.label;
  const { ui, state, fetchAhead, takeNext, send, drawQuestion, showDone, openNone, isTyping, MAX_KEYS } = L;

  async function start() {
    try {
      state.info = await api("/api/info");
      showModelInHeader(state.info);
      await L.loadStatus();
    } catch (e) {
      if (e.status === 404) ui.noPool.hidden = false; // a server without --pool
      else showError(e.message);
      return;
    }
    ui.statusLine.hidden = false;
    ui.asking.hidden = false;
    ui.keysHelp.hidden = false;
    await next();
  }

  function show(q) {
    state.current = q;
    state.seq += 1;
    drawQuestion(q);
    state.shownAt = performance.now();
  }

  /** Ask the next question (or say nothing is left), then fetch more behind it. */
  async function next() {
    state.current = null;
    state.after = "";
    try {
      const q = await takeNext();
      if (q) show(q);
      else showDone();
    } catch (e) {
      showError(e.message);
      return;
    }
    fetchAhead().catch((e) => showError(e.message)); // behind the question: its keys work meanwhile
  }

  /** A newer model: its questions replace the one on screen, unless that one is already half answered. */
  function replaceQuestion() {
    if (state.sending || state.after || isTyping()) return;
    if (!state.current && ui.done.hidden) return; // a question is on its way already
    next();
  }

  /** Answer the question on screen: "yes", "no", "skip" or a label name. */
  async function answer(value) {
    const q = state.current;
    if (!q || state.sending) return;
    state.sending = true;
    ui.saving.hidden = false;
    ui.question.classList.add("saving");
    try {
      const reply = await send(q, value);
      showError("");
      if (reply.follow_up) {
        state.after = q.shown[0];
        show(reply.follow_up); // the same item: which is it, then?
      } else {
        await next();
      }
      L.refreshStatus();
    } catch (e) {
      showError(e.message); // the question stays: answer it again, or skip it
    } finally {
      state.sending = false;
      ui.saving.hidden = true;
      ui.question.classList.remove("saving");
    }
  }

  ui.skip.addEventListener("click", () => answer("skip"));

  // ---------------------------------------------------------------- keys

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || isTyping() || isTypingTarget(e.target)) return;
    if ((e.key === "Enter" || e.key === " ") && e.target instanceof Element && e.target.closest("button, a, summary")) return;
    if (ui.asking.hidden) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const q = state.current;
    let handled = true;
    if (key === "t") L.startRetrain();
    else if (!q) handled = false;
    else if (key === "s") answer("skip");
    else if (q.kind === "confirm" && (key === "y" || key === "n")) answer(key === "y" ? "yes" : "no");
    else if (q.kind === "choose" && key === "0") openNone();
    else if (q.kind !== "confirm" && /^[1-9]$/.test(key) && Number(key) <= Math.min(q.shown.length, MAX_KEYS)) {
      answer(q.shown[Number(key) - 1]);
    } else handled = false;
    if (handled) e.preventDefault(); // "0" must not land in the type-ahead it opens
  });

  Object.assign(L, { answer, replaceQuestion });

  start();
})();
