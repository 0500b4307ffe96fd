// "Label" page, the status line: pool size, answers, fine labels settled, the current model, the files that could
// not be read; Train on my answers with its progress (polled every 2 s while it runs), its result, and the model
// versions. A newer current model drops the questions held and asks its own.
// Part of the label page (see label_state.js for the load order); L.name() calls go to later files.
"use strict";

(function () {
  const { api, postJSON, el, formatInt, showError } = window.hx;
  const L = window.hx.label;
  const { ui, state } = L;

  const POLL_MS = 2000;
  const status = { retrain: null, versions: [], broken: {}, loading: null, again: false, timer: 0 };

  /** Counts from /api/queue/status or /api/queue/next (the latter has no retrain, versions or file list). */
  function showStatus(s) {
    if (!s) return;
    ui.pool.textContent = formatInt(s.pool);
    ui.answers.textContent = formatInt(s.answers);
    ui.settled.textContent = formatInt(s.fine_settled);
    if (s.broken && typeof s.broken === "object") showBroken(s.broken);
    if (s.retrain) status.retrain = s.retrain;
    if (s.versions) status.versions = s.versions;
    if (s.model) showModel(s.model);
    if (s.retrain || s.versions) drawRetrain();
  }

  function showBroken(broken) {
    const files = Object.entries(broken);
    status.broken = broken;
    ui.broken.hidden = !files.length;
    ui.brokenCount.textContent = formatInt(files.length);
    ui.brokenList.replaceChildren(
      ...files.map(([file, reason]) => el("li", {}, el("code", { text: file }), el("span", { class: "muted", text: ` ${reason}` }))),
    );
  }

  /** The current model; a newer one than the questions held came from drops them and asks afresh. */
  function showModel(model) {
    ui.model.textContent = model;
    document.body.dataset.model = model;
    if (!state.model) {
      state.model = model;
      return;
    }
    if (model <= state.model) return; // an older reply overtaken by a newer one ("v001" > "v000")
    state.model = model;
    L.dropAhead();
    setTimeout(() => L.replaceQuestion(), 0); // after this reply is handled: a fresh fetch may start
  }

  /** Fetch the status now; a call while one is in flight asks for one more after it. Throws its error. */
  async function loadStatus() {
    if (status.loading) {
      status.again = true;
      return status.loading;
    }
    status.loading = api("/api/queue/status");
    try {
      showStatus(await status.loading);
    } finally {
      status.loading = null;
    }
    if (status.again) {
      status.again = false;
      await loadStatus();
    }
  }

  /** loadStatus for the page's background refreshes: an error is shown, and the poll goes on while one runs. */
  function refreshStatus() {
    return loadStatus().catch((e) => {
      showError(e.message);
      if (status.retrain && status.retrain.running) schedulePoll();
    });
  }

  function schedulePoll() {
    if (status.timer) return;
    status.timer = setTimeout(() => {
      status.timer = 0;
      refreshStatus();
    }, POLL_MS);
  }

  /** A finished version the server is still loading (re-scoring the pool) before it becomes the current model. */
  function swapping() {
    const last = status.retrain && status.retrain.last;
    return Boolean(last && last.accepted && last.version > state.model && !status.retrain.error);
  }

  function drawRetrain() {
    const r = status.retrain || {};
    ui.retrain.disabled = Boolean(r.running);
    ui.retrainState.classList.toggle("bad", Boolean(r.error) && !r.running);
    ui.retrainState.replaceChildren(...retrainWords(r));
    drawVersions();
    if (r.running || swapping()) schedulePoll();
  }

  function retrainWords(r) {
    if (r.running) {
      const p = r.progress || {};
      const text = p.phase === "training" && p.steps
        ? `Training ${r.version}: step ${formatInt(p.step)} of ${formatInt(p.steps)}`
        : p.phase === "checking" || p.phase === "trained"
          ? `Checking ${r.version} on held-back answers…`
          : `Starting ${r.version}…`;
      const share = p.steps ? Math.min(1, (p.phase === "training" ? p.step : p.steps) / p.steps) : 0;
      return [
        el("span", { class: "spinner", "aria-hidden": "true" }),
        el("span", { text }),
        el("span", { class: "meter", "aria-hidden": "true" }, el("span", { style: { width: `${Math.round(share * 100)}%` } })),
      ];
    }
    if (r.error) return [el("span", { text: r.error })];
    if (r.last) return [el("span", { text: swapping() ? `${r.last.version} is better: loading it…` : verdict(r.last) })];
    return [];
  }

  /** "v001 is now current (held-back: 0.81 vs 0.78)" or "v001 kept aside: worse on held-back answers (0.70 vs
   * 0.78)": the new version's score on the answers held back against the current one's. */
  function verdict(record) {
    const check = record.check || {};
    const now = check.new && check.new.score;
    const before = check.current && check.current.score;
    const scored = Number.isFinite(now) && Number.isFinite(before);
    const scores = scored ? `${now.toFixed(2)} vs ${before.toFixed(2)}` : "";
    if (!record.accepted) return `${record.version} kept aside: worse on held-back answers (${scores})`;
    return `${record.version} is now current (${scored ? `held-back: ${scores}` : "no held-back answers to check it on"})`;
  }

  /** Newest first; the model the server was given is v000, always last. */
  function drawVersions() {
    const r = status.retrain || {};
    const rows = status.versions.slice().reverse().map((v) => {
      const running = r.running && r.version === v.version;
      let badge = ["unfinished", "did not finish"];
      if (running) badge = ["running", "training…"];
      else if (v.version === state.model) badge = ["current", "current"];
      else if ("accepted" in v) badge = v.accepted ? ["accepted", "was current"] : ["aside", "kept aside"];
      const check = v.check || {};
      const now = check.new && check.new.score;
      const before = check.current && check.current.score;
      const facts = [];
      if (Number.isFinite(now) && Number.isFinite(before)) facts.push(`held-back ${now.toFixed(2)} vs ${before.toFixed(2)}`);
      else if ("accepted" in v) facts.push("nothing held back");
      if (Number.isFinite(v.trained_on)) facts.push(`${formatInt(v.trained_on)} images`);
      if (Number.isFinite(v.seconds)) facts.push(`${Math.round(v.seconds)} s`);
      return version(v.version, badge, facts.join(" · "));
    });
    const given = state.model === "v000" ? ["current", "current"] : ["given", "given"];
    rows.push(version("v000", given, "the model the server started with"));
    ui.versions.replaceChildren(...rows);
  }

  function version(name, [kind, words], facts) {
    return el(
      "li",
      { class: `version ${kind}`, dataset: { version: name } },
      el("span", { class: "version-name", text: name }),
      el("span", { class: `badge ${kind}`, text: words }),
      el("span", { class: "version-facts", text: facts }),
    );
  }

  /** Train on my answers: the server fine-tunes in a child process; the page follows it by polling. */
  async function startRetrain() {
    if (ui.retrain.disabled) return;
    ui.retrain.disabled = true;
    try {
      const started = await postJSON("/api/retrain", {});
      status.retrain = { ...(status.retrain || {}), running: true, version: started.version, progress: {}, error: "" };
      drawRetrain();
      showError("");
    } catch (e) {
      showError(e.message);
    } finally {
      await refreshStatus();
    }
  }

  ui.retrain.addEventListener("click", startRetrain);

  Object.assign(L, { showStatus, loadStatus, refreshStatus, startRetrain });
})();
