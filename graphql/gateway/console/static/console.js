// Keeps the inbox live: the server pushes an event for each referral that moves (server-sent events from the
// referralUpdates subscription); the page then fetches its list again, with the same filters. Without script,
// the page still works: it just needs a reload.
(function () {
  "use strict";
  var box = document.getElementById("inbox");
  if (!box || !window.EventSource) { return; }
  var live = document.getElementById("live");
  var pending = null;
  function refresh() {
    var query = new URLSearchParams(window.location.search);
    query.set("fragment", "1");
    fetch(window.location.pathname + "?" + query.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        box.innerHTML = html;
        if (live) { live.textContent = box.getAttribute("data-updated") || "Updated"; }
      })
      .catch(function () {});
  }
  var source = new EventSource(box.getAttribute("data-live"));
  source.addEventListener("changed", function () {
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(refresh, 150);
  });
})();
