// Live progress of a running call on its console page, over Server-Sent Events.
// Progressive enhancement only: without it the page refreshes itself (<noscript>).
(function () {
  "use strict";
  var live = document.querySelector("[data-events]");
  if (!live || typeof EventSource === "undefined") {
    return;
  }
  function show(name, value) {
    var field = live.querySelector('[data-field="' + name + '"]');
    if (field) {
      field.textContent = value;
    }
  }
  function number(value) {
    return value === null || value === undefined ? "-" : Number(value).toLocaleString("en");
  }
  var source = new EventSource(live.getAttribute("data-events"));
  source.addEventListener("state", function (event) {
    var status = JSON.parse(event.data);
    show("state", status.state);
    show("verdict", status.verdict || "none yet");
    show("rows", number(status.rows));
    show("bytes", number(status.bytes));
    live.setAttribute("data-state", status.state);
  });
  source.addEventListener("end", function () {
    source.close();
    live.setAttribute("data-ended", "true");
    show("note", "The call has ended: loading its result.");
    window.location.reload();
  });
  source.onerror = function () {
    source.close();
    show("note", "Live updates stopped: reload the page to see where the call stands.");
  };
})();
