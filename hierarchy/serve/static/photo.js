// "One photo" page: upload a photo, show every region the model found, and let the user
// draw their own crop (Cropper.js) to ask the model again about just that part.
"use strict";

(function () {
  const { api, el, showError, formatPercent, probClass, showModelInHeader } = window.hx;

  const $ = (id) => document.getElementById(id);
  const fileInput = $("file-input");
  const dropZone = $("drop-zone");
  const toolbar = $("photo-toolbar");
  const meta = $("photo-meta");
  const busy = $("busy");
  const cropButton = $("crop-button");
  const askAgain = $("ask-again");
  const cropClose = $("crop-close");
  const cropHelp = $("crop-help");
  const stage = $("stage");
  const photo = $("photo");
  const overlay = $("overlay");
  const regionsBox = $("regions");
  const regionCount = $("region-count");

  // Colours that stay distinguishable on photos; a region's box and its list entry share one.
  const PALETTE = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#65a30d"];
  const MANUAL_COLOUR = "#111827";

  const state = {
    info: null, // /api/info, for head order (optional: the page works without it)
    file: null, // the File being looked at; "Ask again" re-sends it
    objectUrl: null,
    result: null, // last /api/predict answer without a box: {width, height, regions}
    manual: null, // last manual-crop region (kind "manual")
    selected: 0, // index into result.regions, or "manual"
    cropper: null,
    cropperReady: false,
    pendingBox: null, // box to apply once the cropper is ready
    askWhenReady: false, // "Ask again" pressed before Cropper finished loading the image
    requestSeq: 0, // drops answers for a photo that is no longer shown
    controller: null,
    imageLoaded: false,
  };

  // ---------------------------------------------------------------- helpers

  function setBusy(on) {
    busy.hidden = !on;
    regionsBox.setAttribute("aria-busy", on ? "true" : "false");
    document.body.classList.toggle("is-busy", on);
    askAgain.disabled = on;
  }

  function headOrder(heads) {
    const keys = Object.keys(heads || {});
    if (state.info && Array.isArray(state.info.heads)) {
      const known = state.info.heads.filter((h) => keys.includes(h));
      return known.concat(keys.filter((h) => !known.includes(h)));
    }
    return keys;
  }

  /** The head shown on a box: the most specific one (fine) when present, else the first. */
  function mainHead(heads) {
    if (heads && heads.fine) return "fine";
    return headOrder(heads)[0];
  }

  function colourOf(index) {
    return index === "manual" ? MANUAL_COLOUR : PALETTE[index % PALETTE.length];
  }

  function regionAt(index) {
    if (index === "manual") return state.manual;
    return state.result && state.result.regions[index];
  }

  /** Size ratio natural image pixels / server pixels (1 unless the browser ignored EXIF rotation). */
  function naturalScale() {
    const w = state.result ? state.result.width : photo.naturalWidth;
    return w ? photo.naturalWidth / w : 1;
  }

  // ---------------------------------------------------------------- choosing a file

  async function chooseFile(file) {
    if (!file) return;
    stopCrop();
    showError("");
    state.file = file;
    state.result = null;
    state.manual = null;
    state.selected = 0;
    state.imageLoaded = false;
    overlay.replaceChildren();
    regionsBox.replaceChildren();
    regionCount.textContent = "";
    cropButton.disabled = true;

    // Show the photo straight away from memory; the server answer follows.
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = URL.createObjectURL(file);
    photo.src = state.objectUrl;
    stage.hidden = false;
    toolbar.hidden = false;
    dropZone.classList.add("compact");
    meta.textContent = file.name;
    meta.title = file.name;

    const seq = ++state.requestSeq;
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    setBusy(true);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const answer = await api("/api/predict", { method: "POST", body: form, signal: state.controller.signal });
      if (seq !== state.requestSeq) return;
      state.result = answer;
      meta.textContent = `${file.name} · ${answer.width}×${answer.height}`;
      renderAll();
    } catch (e) {
      if (e.name === "AbortError" || seq !== state.requestSeq) return;
      showError(e.message);
      regionsBox.replaceChildren(el("p", { class: "empty-note", text: "No result for this photo." }));
      // A file the browser cannot draw either is not worth keeping on screen.
      if (!state.imageLoaded && e.status === 400) stage.hidden = true;
    } finally {
      if (seq === state.requestSeq) setBusy(false);
      updateCropButton();
    }
  }

  function updateCropButton() {
    // Cropping needs a drawable image and the original size from the server (box units).
    cropButton.disabled = !(state.imageLoaded && state.result);
  }

  photo.addEventListener("load", () => {
    state.imageLoaded = true;
    placeOverlay();
    updateCropButton();
  });
  photo.addEventListener("error", () => {
    state.imageLoaded = false;
    updateCropButton();
  });

  fileInput.addEventListener("change", () => {
    chooseFile(fileInput.files && fileInput.files[0]);
    // Cleared so that choosing the same file again (after editing it, say) still fires "change".
    fileInput.value = "";
  });

  // Drops anywhere on the page count: people aim roughly. Only files are accepted.
  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    dragDepth++;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    document.body.classList.remove("dragging");
    const file = e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) chooseFile(file);
  });

  // Pasting a screenshot/copied image is the quickest way to try a photo from a web page.
  document.addEventListener("paste", (e) => {
    const items = Array.from((e.clipboardData && e.clipboardData.files) || []);
    const image = items.find((f) => f.type.startsWith("image/"));
    if (image) {
      e.preventDefault();
      chooseFile(image);
    }
  });

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
          onclick: () => startCrop(index),
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
          if (!e.target.closest("button")) startCrop(index);
        },
        onkeydown: (e) => {
          if (e.key === "Enter" && e.target === item) startCrop(index);
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
          onclick: () => startCrop(index),
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

  // ---------------------------------------------------------------- cropping

  function startCrop(index) {
    if (!state.result || !state.imageLoaded) return;
    const region = regionAt(index);
    state.selected = region ? index : 0;
    // No region at all (nothing detected): start from the whole photo.
    const box = region ? region.box : [0, 0, state.result.width, state.result.height];
    document.querySelectorAll(".region.selected, .box.selected").forEach((n) => n.classList.remove("selected"));
    document.querySelectorAll(`[data-index="${state.selected}"]`).forEach((n) => n.classList.add("selected"));

    if (state.cropper) {
      applyBox(box);
      return;
    }
    state.pendingBox = box;
    state.cropperReady = false;
    stage.classList.add("cropping");
    overlay.hidden = true;
    cropButton.hidden = true;
    askAgain.hidden = false;
    askAgain.disabled = !busy.hidden;
    cropClose.hidden = false;
    cropHelp.hidden = false;
    state.cropper = new window.Cropper(photo, {
      viewMode: 1, // the box stays inside the photo
      dragMode: "crop", // dragging outside the box draws a new one
      autoCropArea: 1,
      // The browser already applies EXIF rotation to <img>, as the server does; letting Cropper
      // rotate again would make its pixels disagree with the server's box coordinates.
      checkOrientation: false,
      zoomable: false, // wheel zoom fights page scrolling and is not needed to pick a box
      rotatable: false,
      scalable: false,
      movable: false,
      toggleDragModeOnDblclick: false,
      background: false,
      ready() {
        state.cropperReady = true;
        if (state.pendingBox) applyBox(state.pendingBox);
        state.pendingBox = null;
        if (state.askWhenReady) {
          state.askWhenReady = false;
          ask();
        }
      },
    });
  }

  /** Put the cropper on a box given in server pixels (Cropper wants natural pixels x,y,w,h). */
  function applyBox(box) {
    if (!state.cropperReady) {
      state.pendingBox = box;
      return;
    }
    const s = naturalScale();
    const [x1, y1, x2, y2] = box;
    state.cropper.setData({ x: x1 * s, y: y1 * s, width: (x2 - x1) * s, height: (y2 - y1) * s });
  }

  function stopCrop() {
    if (state.cropper) state.cropper.destroy();
    state.cropper = null;
    state.cropperReady = false;
    state.pendingBox = null;
    state.askWhenReady = false;
    stage.classList.remove("cropping");
    overlay.hidden = false;
    cropButton.hidden = false;
    askAgain.hidden = true;
    cropClose.hidden = true;
    cropHelp.hidden = true;
    placeOverlay();
  }

  /** The cropper's box in server pixels as "x1,y1,x2,y2", clamped inside the photo. */
  function cropBox() {
    const d = state.cropper.getData(true); // natural pixels, rounded: x, y, width, height
    const s = naturalScale();
    const { width: W, height: H } = state.result;
    const clamp = (v, hi) => Math.max(0, Math.min(hi, Math.round(v)));
    const x1 = clamp(d.x / s, W);
    const y1 = clamp(d.y / s, H);
    const x2 = clamp((d.x + d.width) / s, W);
    const y2 = clamp((d.y + d.height) / s, H);
    return [x1, y1, x2, y2];
  }

  async function ask() {
    if (!state.cropper || !state.file || !busy.hidden) return;
    if (!state.cropperReady) {
      state.askWhenReady = true; // a quick click right after "Adjust crop" still counts
      return;
    }
    const [x1, y1, x2, y2] = cropBox();
    if (x2 - x1 < 2 || y2 - y1 < 2) {
      showError("The crop box is too small: drag out a larger box first.");
      return;
    }
    showError("");
    const seq = ++state.requestSeq;
    state.controller = new AbortController();
    setBusy(true);
    try {
      const form = new FormData();
      form.append("file", state.file, state.file.name);
      form.append("box", `${x1},${y1},${x2},${y2}`);
      const answer = await api("/api/predict", { method: "POST", body: form, signal: state.controller.signal });
      if (seq !== state.requestSeq) return;
      const region = answer.regions && answer.regions[0];
      if (!region) throw new Error("The server returned no result for this crop.");
      state.manual = region;
      state.selected = "manual";
      renderAll();
      const item = regionsBox.querySelector('.region[data-index="manual"]');
      if (item) item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    } catch (e) {
      if (e.name !== "AbortError" && seq === state.requestSeq) showError(e.message);
    } finally {
      if (seq === state.requestSeq) setBusy(false);
    }
  }

  cropButton.addEventListener("click", () => startCrop(state.selected));
  askAgain.addEventListener("click", ask);
  cropClose.addEventListener("click", stopCrop);

  document.addEventListener("keydown", (e) => {
    if (!state.cropper || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "Escape") {
      e.preventDefault();
      stopCrop();
    } else if (e.key === "Enter" && !(e.target instanceof HTMLButtonElement) && !e.target.closest(".region")) {
      e.preventDefault();
      ask();
    }
  });

  // ---------------------------------------------------------------- start

  // /api/info is only needed for head order and the model name; failing it is not fatal here.
  api("/api/info")
    .then((info) => {
      state.info = info;
      showModelInHeader(info);
      if (state.result) renderAll();
    })
    .catch((e) => {
      if (e.status === 401) showError(e.message);
    });
})();
