/* Copydeck front end: live results over SSE (with a polling fallback),
   copy to clipboard and character counters. Model output is only ever
   inserted with textContent, never as HTML. */
(function () {
  "use strict";

  function countFor(text, format) {
    if (format === "list") {
      var longest = 0;
      text.split("\n").forEach(function (line) { longest = Math.max(longest, line.trim().length); });
      return { total: text.length, longest: longest };
    }
    return { total: text.length, longest: text.length };
  }

  function renderCount(el, text) {
    var limit = parseInt(el.dataset.limit || "", 10);
    var c = countFor(text, el.dataset.format);
    var shown = el.dataset.format === "list" && limit ? c.longest : c.total;
    el.textContent = limit ? shown + " / " + limit + (el.dataset.format === "list" ? " (longest line)" : "") : c.total + " chars";
    el.classList.toggle("over", !!limit && shown > limit);
  }

  function switchToPolling(pane) {
    var url = pane.dataset.paneUrl;
    if (!url || !window.htmx) return;
    htmx.ajax("GET", url + (url.indexOf("?") < 0 ? "?" : "&") + "polling=1", { target: pane, swap: "outerHTML" });
  }

  function showFinal(pane) {
    if (!window.htmx) { window.location.reload(); return; }
    htmx.ajax("GET", pane.dataset.paneUrl, { target: pane, swap: "outerHTML" });
  }

  function bindStream(pane) {
    if (pane.dataset.bound || !pane.dataset.streamUrl || pane.hasAttribute("hx-trigger")) return;
    pane.dataset.bound = "1";
    if (!window.EventSource) { switchToPolling(pane); return; }
    var source = new EventSource(pane.dataset.streamUrl);
    var errors = 0;
    function variantEl(i) { return pane.querySelector('.variant[data-index="' + i + '"]'); }
    function setText(i, text, append) {
      var card = variantEl(i);
      if (!card) return;
      var t = card.querySelector("[data-role=text]");
      t.textContent = append ? t.textContent + text : text;
      renderCount(card.querySelector("[data-role=chars]"), t.textContent);
    }
    source.addEventListener("started", function () {
      var line = pane.querySelector(".status-line");
      if (line) line.lastChild.textContent = " Writing…";
    });
    source.addEventListener("token", function (e) { errors = 0; var d = JSON.parse(e.data); setText(d.v, d.t, true); });
    source.addEventListener("reset", function (e) { var d = JSON.parse(e.data); setText(d.v, "", false); });
    source.addEventListener("variant", function (e) { var d = JSON.parse(e.data); setText(d.v, d.text, false); });
    function finish() { source.close(); showFinal(pane); }
    source.addEventListener("done", finish);
    source.addEventListener("failed", finish);
    source.onerror = function () {
      errors += 1;
      // The browser reconnects by itself, sending Last-Event-ID; after repeated failures, poll.
      if (source.readyState === EventSource.CLOSED || errors > 3) {
        source.close();
        switchToPolling(pane);
      }
    };
  }

  function scan(root) {
    (root || document).querySelectorAll("#results[data-stream-url]").forEach(bindStream);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (e) { scan(e.target.parentNode || document); });

  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    var text = source.textContent;
    function done() {
      var label = button.querySelector("span") || button;
      var old = label.textContent;
      label.textContent = "Copied!";
      setTimeout(function () { label.textContent = old; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else { fallbackCopy(text); done(); }
  });

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (err) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  document.addEventListener("input", function (e) {
    var area = e.target;
    if (!area.dataset || !area.dataset.counter) return;
    var counter = document.querySelector(area.dataset.counter);
    if (counter) { counter.dataset.limit = area.dataset.limit; counter.dataset.format = area.dataset.format; renderCount(counter, area.value); }
  });

  // htmx: show server error fragments (422 and friends) instead of ignoring them.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    if (status === 422 || status === 402) { e.detail.shouldSwap = true; e.detail.isError = false; }
    else if (status >= 400) {
      e.detail.shouldSwap = false;
      var box = document.querySelector(".flashes") || document.querySelector("main");
      var div = document.createElement("div");
      div.className = "flash flash-error"; div.setAttribute("role", "alert");
      div.textContent = e.detail.xhr.getResponseHeader("X-Message") || (status === 404 ? "That item no longer exists." : status === 429 ? "Too many requests; wait a moment." : "Something went wrong; nothing was saved. Reload and try again.");
      box.prepend(div);
    }
  });
})();

/* Selects marked data-autosubmit submit their form when changed (workspace switcher, roles, period). */
document.addEventListener("change", function (e) {
  var el = e.target;
  if (el.matches && el.matches("select[data-autosubmit]") && el.form) { el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit(); }
});

/* Forms marked data-confirm ask first (no inline onsubmit: the CSP allows scripts from /static only). */
document.addEventListener("submit", function (e) {
  var message = e.target.dataset && e.target.dataset.confirm;
  if (message && !window.confirm(message)) { e.preventDefault(); e.stopImmediatePropagation(); }
}, true);
