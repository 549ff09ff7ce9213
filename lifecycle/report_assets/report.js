// Hover details and a status line; the page reads fine without it (SVG titles).
(function () {
  "use strict";
  var details = document.getElementById("details");
  var shapes = document.querySelectorAll("svg.timeline g, svg.waterfall g");
  function show(event) {
    var title = event.currentTarget.querySelector("title");
    if (!title) { return; }
    details.textContent = title.textContent;
    details.hidden = false;
  }
  function hide() { details.hidden = true; }
  for (var i = 0; i < shapes.length; i++) {
    shapes[i].addEventListener("mouseenter", show);
    shapes[i].addEventListener("mouseleave", hide);
  }
  var sessions = document.querySelectorAll("section.session").length;
  var turns = document.querySelectorAll("g.turn").length;
  var lanes = document.querySelectorAll("section.session g.lane").length;
  document.getElementById("status").textContent =
    "rendered " + sessions + " sessions, " + turns + " turns, " + lanes + " lanes; hover a shape for details";
  // Turn labels as drawn: how many pairs overlap (the page places them so that none do).
  var overlaps = 0;
  var sections = document.querySelectorAll("section.session");
  for (var s = 0; s < sections.length; s++) {
    var boxes = [];
    var labels = sections[s].querySelectorAll("text.turn-label");
    for (var l = 0; l < labels.length; l++) { boxes.push(labels[l].getBoundingClientRect()); }
    for (var a = 0; a < boxes.length; a++) {
      for (var b = a + 1; b < boxes.length; b++) {
        if (boxes[a].left < boxes[b].right && boxes[b].left < boxes[a].right &&
            boxes[a].top < boxes[b].bottom && boxes[b].top < boxes[a].bottom) { overlaps++; }
      }
    }
  }
  document.documentElement.setAttribute("data-label-overlaps", String(overlaps));
  document.documentElement.setAttribute("data-timeline", "ready");
})();
