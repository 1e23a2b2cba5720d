// Fills the hidden fields: the visitor's time zone (for send windows) and the page they are on.
(function () {
  var zone = document.getElementById("time_zone");
  var page = document.getElementById("page");
  try {
    if (zone) zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) { /* an old browser: the sequence's default zone applies */ }
  if (page && document.referrer) page.value = document.referrer;
  var errors = document.getElementById("form-errors");
  if (errors) errors.focus();
})();
