// Hover details and a status line; the page reads fine without it (SVG titles).
(function () {
  "use strict";
  var details = document.getElementById("details");
  var shapes = document.querySelectorAll("svg.timeline g");
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
  document.documentElement.setAttribute("data-timeline", "ready");
})();
