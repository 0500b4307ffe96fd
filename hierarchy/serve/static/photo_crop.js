// "One photo" page, cropping: "Adjust crop" puts Cropper.js on the photo (starting from a region's
// box), and "Ask again" (or Enter) sends the photo with the drawn box to get a "manual" region.
// Part of the photo page (see photo_state.js for the load order).
"use strict";

(function () {
  const { api, showError } = window.hx;
  const P = window.hx.photo;
  const { state, setBusy, regionAt, naturalScale, placeOverlay, renderAll } = P;
  const { busy, cropButton, askAgain, cropClose, cropHelp, stage, photo, overlay, regionsBox } = P.dom;

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

  Object.assign(P, { startCrop, stopCrop });
})();
