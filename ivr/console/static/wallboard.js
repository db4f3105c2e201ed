// The live wallboard: the server pushes the board (already rendered and escaped) whenever the queue changes.
"use strict";
(function () {
  const board = document.getElementById("board");
  if (!board || !window.EventSource) return;
  const status = document.getElementById("board-status");
  const feed = new EventSource(board.dataset.live);
  feed.addEventListener("wallboard", function (event) {
    board.innerHTML = JSON.parse(event.data).html;
    status.textContent = "";
  });
  feed.addEventListener("error", function () {
    status.textContent = "Live updates interrupted; reconnecting…";
  });
})();
