// The live queue: the server pushes the table (already rendered and escaped) whenever the queue changes.
"use strict";
(function () {
  const queue = document.getElementById("queue");
  if (!queue || !window.EventSource) return;
  const summary = document.getElementById("queue-summary");
  const status = document.getElementById("feed-status");
  const feed = new EventSource(queue.dataset.live);
  feed.addEventListener("queue", function (event) {
    const update = JSON.parse(event.data);
    queue.innerHTML = update.html;
    summary.textContent = update.summary;
    status.textContent = "";
  });
  feed.addEventListener("change", function (event) {
    const change = JSON.parse(event.data);
    const line = document.getElementById("pop-line");  // the caller this agent holds was put through
    if (line && change.kind === "connected" && String(change.entry_id) === line.dataset.entry) {
      line.textContent = "Connected to your phone";
    }
  });
  feed.addEventListener("problem", function (event) {
    status.textContent = "Queue unavailable: " + event.data + " Retrying…";
  });
  feed.addEventListener("error", function () {
    status.textContent = "Live updates interrupted; reconnecting…";
  });
})();
