// The sequence editor: show the Markdown or the HTML fields of a step as its mode says, ask
// before leaving a page with unsaved edits, and take focus to a refused save's error.
// Everything works without it.
(function () {
  "use strict";
  // A refused save: the message is read first (role=alert), then the first bad field.
  var alert = document.getElementById("editor-error");
  if (alert) {
    var bad = document.querySelector("#editor [aria-invalid=true]");
    if (bad) { bad.focus(); } else { alert.setAttribute("tabindex", "-1"); alert.focus(); }
  }
  var form = document.getElementById("editor");
  if (!form) { return; }
  var dirty = false;
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
  Array.prototype.forEach.call(form.querySelectorAll(".mode-select"), function (select) {
    select.addEventListener("change", function () {
      var n = select.getAttribute("data-step");
      var markdown = select.value === "markdown";
      document.getElementById("s" + n + "-markdown-field").hidden = !markdown;
      document.getElementById("s" + n + "-html-field").hidden = markdown;
    });
  });
})();
