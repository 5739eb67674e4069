// The few things htmx does not do for the dashboard: announce status changes to screen readers,
// tick elapsed times between polls, copy buttons, the phone menu, and say when live updates pause.
(function () {
  "use strict";

  function announce(text) {
    var box = document.getElementById("announcer");
    if (box && text) { box.textContent = text; }
  }

  // Statuses by store before a live region is swapped, to announce only what changed.
  function statuses(root) {
    var seen = {};
    if (!root) { return seen; }
    var items = root.matches && root.matches("[data-store-id]") ? [root] : [];
    items = items.concat(Array.prototype.slice.call(root.querySelectorAll("[data-store-id]")));
    items.forEach(function (el) {
      seen[el.getAttribute("data-store-id")] = [el.getAttribute("data-store-name"), el.getAttribute("data-status")];
    });
    return seen;
  }

  var before = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    before = statuses(event.detail.target);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var after = statuses(document.getElementById(event.detail.target.id) || event.detail.elt);
    var changes = [];
    Object.keys(after).forEach(function (id) {
      var old = before[id];
      if (old && old[1] !== after[id][1]) { changes.push(after[id][0] + " is now " + after[id][1]); }
    });
    if (changes.length) { announce(changes.join(". ") + "."); }
    tick();
  });

  // Live updates that fail (the server is restarting, Postgres or Redis is away) keep the page as it is
  // and say so; the next successful poll clears the notice.
  function liveStatus(text) {
    var box = document.getElementById("live-status");
    if (!box) { return; }
    box.textContent = text || "";
    box.hidden = !text;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var code = event.detail.xhr ? event.detail.xhr.status : 0;
    var why = code === 429 ? "the request limit was reached" : code === 503 ? "the service is temporarily unavailable" : "the server answered " + code;
    liveStatus("Live updates paused: " + why + ". Retrying; this page may be out of date meanwhile.");
  });
  document.addEventListener("htmx:sendError", function () {
    liveStatus("Live updates paused: the dashboard cannot be reached. Retrying; this page may be out of date meanwhile.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) { liveStatus(""); }
  });

  // "3 min 12 s elapsed" keeps counting between polls (the server only sends news).
  function format(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) { return h + " h " + m + " min"; }
    if (m) { return s ? m + " min " + s + " s" : m + " min"; }
    return s + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-elapsed-since"));
      if (!isNaN(since)) { el.textContent = format((now - since) / 1000); }
    });
  }
  setInterval(tick, 1000);

  // Copy buttons: data-copy holds the text, or data-copy-from names the element whose text to copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var from = button.getAttribute("data-copy-from");
    var text = from ? document.getElementById(from).textContent.trim() : button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      announce("Copied to the clipboard.");
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  });
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selectable on the page */ }
    document.body.removeChild(area);
  }

  document.addEventListener("DOMContentLoaded", function () {
    // The phone menu: the nav folds behind a button on narrow screens (CSS decides when).
    var toggle = document.querySelector(".menu-toggle");
    var nav = document.getElementById("site-nav");
    if (toggle && nav) {
      toggle.hidden = false;
      document.documentElement.classList.add("js");
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        nav.classList.toggle("open", open);
      });
    }
    // "New store" opens the create panel and puts the cursor in the name field.
    document.querySelectorAll("[data-opens]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var panel = document.getElementById(link.getAttribute("data-opens"));
        if (!panel) { return; }
        event.preventDefault();
        panel.open = true;
        var field = panel.querySelector("input:not([type=hidden])");
        if (field) { field.focus(); }
      });
    });
    tick();
  });
})();
