// Shared helpers for the hierarchy serve pages (plain ES2020, no build step).
// Loaded as a classic script before the page scripts (photo*.js, review*.js); everything lives on window.hx
// so the page scripts can stay ordinary scripts that also work from file-less test harnesses.
"use strict";

(function () {
  // Friendly fallbacks for errors that arrive without a JSON {"detail"} body
  // (a proxy, an overloaded server, or the request never reaching FastAPI).
  const STATUS_TEXT = {
    400: "The server could not use this request.",
    401: "This server needs an access token: open the page as /?token=YOUR_TOKEN (the token given to hierarchy serve --token).",
    404: "Not found on the server.",
    413: "The upload is too large for this server.",
    500: "The server failed while handling this request; its terminal shows the reason.",
  };

  /**
   * fetch() that returns parsed JSON (or the Response for non-JSON bodies) and throws an Error
   * whose message is the server's {"detail": ...} sentence on any non-2xx answer.
   * The error carries .status so callers can react to 401/413 etc.
   */
  async function api(url, options = {}) {
    let response;
    try {
      // same-origin cookies carry the optional access token (see API.md: hierarchy_token cookie)
      response = await fetch(url, { credentials: "same-origin", ...options });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      const err = new Error("Could not reach the server. Is `hierarchy serve` still running?");
      err.status = 0;
      throw err;
    }
    const type = response.headers.get("content-type") || "";
    let body = null;
    if (type.includes("application/json")) {
      try {
        body = await response.json();
      } catch (e) {
        body = null; // a broken JSON body is reported below by status
      }
    }
    if (!response.ok) {
      let message = body && body.detail;
      // FastAPI validation errors use a list of {loc, msg}; make them one readable sentence.
      if (Array.isArray(message)) {
        message = message.map((d) => (d && d.msg ? `${(d.loc || []).slice(-1)[0] || "request"}: ${d.msg}` : String(d))).join("; ");
      } else if (message && typeof message !== "string") {
        message = JSON.stringify(message);
      }
      if (!message) message = STATUS_TEXT[response.status] || `The server answered ${response.status} ${response.statusText}.`;
      const err = new Error(message);
      err.status = response.status;
      throw err;
    }
    return body !== null ? body : response;
  }

  /** POST a JSON body and return the JSON answer (errors as in api()). */
  function postJSON(url, data, options = {}) {
    return api(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(data),
      ...options,
    });
  }

  // One formatter for counts so "12,345" looks the same on every page and in tests.
  const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const formatInt = (n) => integerFormat.format(Number(n) || 0);

  /** 0.4123 -> "0.41" (review uses the same 0–1 scale as its min/max filters). */
  const formatProb = (p) => (Number.isFinite(p) ? p.toFixed(2) : "–");

  /** 0.4123 -> "41.2%" (photo page bars); whole percentages once they are large. */
  function formatPercent(p) {
    if (!Number.isFinite(p)) return "–";
    const pct = p * 100;
    return pct >= 10 || pct === 0 ? `${Math.round(pct)}%` : `${pct.toFixed(1)}%`;
  }

  /** Traffic-light class for a probability: red < 0.5, amber < 0.8, green otherwise. */
  const probClass = (p) => (!Number.isFinite(p) ? "p-none" : p < 0.5 ? "p-low" : p < 0.8 ? "p-mid" : "p-high");

  /** Escape text for insertion into HTML (names and paths come from user data). */
  function escapeHtml(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  /**
   * Small element builder: el("div", {class: "x", dataset: {id: 3}, text: "hi"}, child...).
   * Text always goes through textContent, so nothing built here can inject markup.
   */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") {
        // custom properties ("--c") need setProperty; plain ones can be assigned
        for (const [prop, v] of Object.entries(value)) {
          if (prop.startsWith("--")) node.style.setProperty(prop, v);
          else node.style[prop] = v;
        }
      }
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Show a message in the page's #error box (empty message hides it). */
  function showError(message) {
    const box = document.getElementById("error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  /** The ?token= the page was opened with, if any (kept on page links; the cookie does the rest). */
  function currentToken() {
    return new URLSearchParams(window.location.search).get("token");
  }

  /** Carry ?token=… onto the header links so moving between pages never loses access. */
  function keepTokenOnLinks() {
    const token = currentToken();
    if (!token) return;
    for (const link of document.querySelectorAll("a[data-keep-token]")) {
      const url = new URL(link.getAttribute("href"), window.location.href);
      url.searchParams.set("token", token);
      link.setAttribute("href", url.pathname + url.search);
    }
  }

  /** Put the model name in the header (best effort: the page still works without it). */
  function showModelInHeader(info) {
    const slot = document.getElementById("model-name");
    if (!slot || !info || !Array.isArray(info.models) || !info.models.length) return;
    const full = info.models.join(", ");
    // the last path part ("20261130-120000") says little; keep the last two
    slot.textContent = info.models.map((m) => String(m).split(/[\\/]/).filter(Boolean).slice(-2).join("/")).join(", ");
    slot.title = `Model: ${full}${info.crop_mode ? ` · crops: ${info.crop_mode}` : ""}`;
    slot.hidden = false;
  }

  /** True when a key event is typed into a form control (page shortcuts must not steal it). */
  function isTypingTarget(target) {
    if (!(target instanceof Element)) return false;
    return target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName);
  }

  document.addEventListener("DOMContentLoaded", keepTokenOnLinks);

  window.hx = {
    api, postJSON, formatInt, formatProb, formatPercent, probClass, escapeHtml, el, showError,
    currentToken, showModelInHeader, isTypingTarget,
  };
})();
