// The sequence editor: show the Markdown or the HTML fields of a step as its mode says, and
// ask before leaving a page with unsaved edits. Everything works without it.
(function () {
  "use strict";
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
