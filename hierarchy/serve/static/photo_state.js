// "One photo" page, shared part: the page's elements, its state and small helpers. The photo page is
// four plain scripts that share one object, window.hx.photo, loaded in this order by index.html
// (after vendor/cropper.min.js and common.js):
//   photo_state.js    this file: elements, state, helpers
//   photo_regions.js  the answer on screen: boxes over the photo and the list of regions
//   photo_crop.js     "Adjust crop" (Cropper.js) and "Ask again" for the drawn box
//   photo.js          choosing a photo (file, drop, paste), sending it, start-up
// Each file takes what earlier files made at its top; a call written P.name() goes to a later file.
"use strict";

(function () {
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

  const dom = {
    fileInput, dropZone, toolbar, meta, busy, cropButton, askAgain, cropClose, cropHelp, stage, photo, overlay,
    regionsBox, regionCount,
  };
  window.hx.photo = { dom, state, setBusy, headOrder, mainHead, colourOf, regionAt, naturalScale };
})();
