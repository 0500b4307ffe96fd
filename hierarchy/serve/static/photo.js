// "One photo" page: upload a photo, show every region the model found, and let the user
// draw their own crop (Cropper.js) to ask the model again about just that part.
// This file handles choosing the photo (file input, drop, paste), sending it and start-up; the other
// parts load before it (index.html): photo_state.js (elements, state, helpers), photo_regions.js
// (boxes and region list), photo_crop.js (Adjust crop / Ask again).
"use strict";

(function () {
  const { api, el, showError, showModelInHeader } = window.hx;
  const P = window.hx.photo;
  const { state, setBusy, placeOverlay, renderAll, stopCrop } = P;
  const { fileInput, dropZone, toolbar, meta, cropButton, stage, photo, overlay, regionsBox, regionCount } = P.dom;

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

  // Small photos (product thumbnails, 28 px data sets) are shown enlarged to a readable height; the width follows
  // the aspect ratio, so the overlay's percentage boxes still line up.
  const SMALL_PHOTO_HEIGHT = 400;
  photo.addEventListener("load", () => {
    state.imageLoaded = true;
    const small = photo.naturalHeight > 0 && photo.naturalHeight < SMALL_PHOTO_HEIGHT;
    photo.classList.toggle("enlarged", small);
    photo.style.width = small ? `min(100%, ${(SMALL_PHOTO_HEIGHT * photo.naturalWidth) / photo.naturalHeight}px)` : "";
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
