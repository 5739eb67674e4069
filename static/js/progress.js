// Keeps a store's status and timeline current without reloading: polls the
// server-rendered fragment every 1.5 s while the store is still changing.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) { return; }
  var url = box.getAttribute("data-progress-url");
  var settled = { ready: true, failed: true, deleted: true };
  function status() {
    var card = box.querySelector("[data-status]");
    return card ? card.getAttribute("data-status") : "";
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) { box.innerHTML = html; }
        // Settled stores change only on user action; keep a slow poll in case another tab acts.
        setTimeout(poll, settled[status()] ? 10000 : 1500);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
