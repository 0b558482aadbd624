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
    // One form while streaming and once stored: "longest line 12 / 30" for lists, "120 / 150" otherwise.
    el.textContent = limit ? (el.dataset.format === "list" ? "longest line " : "") + shown + " / " + limit : c.total + " chars";
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

  // The URL of a pane's live stream: its own path, on the stream server's port when there is one.
  function streamUrl(pane) {
    var port = pane.dataset.streamPort;
    if (!port) return pane.dataset.streamUrl;
    return location.protocol + "//" + location.hostname + ":" + port + pane.dataset.streamUrl;
  }

  // Live text: each SSE event is a batch of stream entries (app/generation/streams.py SSE_FORMAT).
  // Streamed text goes into a per-variant queue that animation frames drain in about three
  // steps that end on word boundaries, so a batch of several tokens still appears as a smooth stream.
  function bindStream(pane) {
    if (pane.dataset.bound || !pane.dataset.streamUrl || pane.hasAttribute("hx-trigger")) return;
    pane.dataset.bound = "1";
    if (!window.EventSource) { switchToPolling(pane); return; }
    var source = new EventSource(streamUrl(pane), { withCredentials: !!pane.dataset.streamPort });
    var errors = 0;
    var pending = {};
    var frame = null;
    function variantEl(i) { return pane.querySelector('.variant[data-index="' + i + '"]'); }
    function setText(i, text, append) {
      var card = variantEl(i);
      if (!card) return;
      var t = card.querySelector("[data-role=text]");
      t.textContent = append ? t.textContent + text : text;
      renderCount(card.querySelector("[data-role=chars]"), t.textContent);
    }
    function drain() {
      frame = null;
      Object.keys(pending).forEach(function (i) {
        var rest = pending[i];
        // About a third of what waits, extended to the end of a word (never half a word).
        var take = Math.max(1, Math.ceil(rest.length / 3));
        var space = rest.slice(take).search(/\s/);
        take = space < 0 ? rest.length : take + space + 1;
        setText(i, rest.slice(0, take), true);
        if (take >= rest.length) delete pending[i]; else pending[i] = rest.slice(take);
      });
      if (Object.keys(pending).length) frame = window.requestAnimationFrame(drain);
    }
    function flush(i) {
      if (pending[i] !== undefined) { setText(i, pending[i], true); delete pending[i]; }
    }
    function flushAll() { Object.keys(pending).forEach(flush); }
    function finish() { flushAll(); source.close(); showFinal(pane); }
    var apply = {
      started: function () {
        var line = pane.querySelector(".status-line");
        if (line) line.lastChild.textContent = " Writing…";
      },
      token: function (d) {
        pending[d.v] = (pending[d.v] || "") + d.t;
        if (frame === null) frame = window.requestAnimationFrame(drain);
      },
      reset: function (d) { delete pending[d.v]; setText(d.v, "", false); },
      variant: function (d) { delete pending[d.v]; setText(d.v, d.text, false); },
      done: finish,
      failed: finish
    };
    source.addEventListener("batch", function (e) {
      errors = 0;
      JSON.parse(e.data).forEach(function (entry) {
        var handler = apply[entry[0]];
        if (handler) handler(entry[1]);
      });
    });
    // The user was suspended or signed out everywhere: the page itself will say so.
    source.addEventListener("closed", function () { source.close(); window.location.reload(); });
    source.onerror = function () {
      errors += 1;
      // The browser reconnects by itself, sending Last-Event-ID; after repeated failures
      // (or a refusal, such as 429 for too many open streams), poll.
      if (source.readyState === EventSource.CLOSED || errors > 3) {
        source.close();
        flushAll();
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
    // Rendered Markdown is copied as the text a reader sees (paragraphs kept); everything else as stored.
    var text = source.classList.contains("markdown") ? source.innerText : source.textContent;
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

  // The generate form's cost line follows the variant count ("This will use 3 of your 12 left").
  function renderCost(input) {
    var line = document.querySelector("[data-cost-line]");
    if (!line || !input) return;
    var n = Math.max(1, parseInt(input.value || "1", 10) || 1);
    var left = parseInt(line.dataset.remaining, 10);
    line.querySelector("[data-role=cost]").textContent = n;
    line.classList.toggle("over", n > left);
    var short = line.querySelector("[data-role=short]");
    if (short) short.hidden = n <= left;
  }
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches("#generate-form [name=variant_count]")) renderCost(e.target);
  });

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

/* Back/Forward after an htmx filter (catalogue, history): htmx restores the page's saved HTML, whose
   controls show what the server first rendered, not the filter of the restored URL. Set them from the URL. */
document.addEventListener("htmx:historyRestore", function () {
  var params = new URLSearchParams(window.location.search);
  document.querySelectorAll("form.filters").forEach(function (form) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      if (el.type === "checkbox") { el.checked = params.getAll(el.name).indexOf(el.value) !== -1; }
      else if (el.tagName === "SELECT" || el.type === "search" || el.type === "text") { el.value = params.get(el.name) || ""; }
    });
  });
});

/* "Copy all": every variant's text of a result (refunded ones left out), separated by a blank line. */
document.addEventListener("click", function (e) {
  var button = e.target.closest("[data-copy-all]");
  if (!button) return;
  var texts = Array.prototype.map.call(document.querySelectorAll(button.dataset.copyAll), function (el) {
    return el.textContent.trim();
  }).filter(Boolean);
  var text = texts.join("\n\n");
  var label = button.querySelector("span") || button;
  var old = label.textContent;
  function done() { label.textContent = "Copied " + texts.length; setTimeout(function () { label.textContent = old; }, 1500); }
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); }
  else {
    var area = document.createElement("textarea");
    area.value = text; area.setAttribute("readonly", ""); area.className = "sr-only";
    document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (err) { /* nothing else to try */ }
    document.body.removeChild(area); done();
  }
});

/* "Fill with an example": put a built-in template's example input into the form's fields in place
   (the settings the user chose stay); without JavaScript the link reloads the form filled. */
document.addEventListener("click", function (e) {
  var link = e.target.closest("[data-fill-example]");
  if (!link) return;
  var form = document.getElementById("generate-form");
  if (!form) return;
  e.preventDefault();
  var example = JSON.parse(link.dataset.fillExample);
  Object.keys(example).forEach(function (name) {
    var field = form.elements["f_" + name];
    if (!field) return;
    field.value = example[name];
    field.dispatchEvent(new Event("input", {bubbles: true}));
  });
  var first = form.querySelector("[name^=f_]");
  if (first) first.focus();
});
