// The embeddable signup form: finds every <form data-leadmagnet> on the page, posts it as
// JSON to the service that served this script, and says how it went inside the form.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch || !window.URL) return; // an old browser: nothing to enhance
  // Relative to the script's own address, so a service under a path prefix works too.
  var endpoint = new URL("api/subscribe", script.src).href;
  var MESSAGES = {
    thanks: "Thank you! The guide is on its way to your inbox.",
    invalid: "Please check the fields marked below.",
    busy: "Too many signups from here just now. Please try again in a few minutes.",
    failed: "Something went wrong on our side. Please try again in a minute.",
    offline: "We could not reach the server. Please check your connection and try again."
  };

  function statusOf(form) {
    var status = form.querySelector("[data-leadmagnet-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-leadmagnet-status", "");
      form.appendChild(status);
    }
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    return status;
  }

  function say(form, text) {
    statusOf(form).textContent = text;
  }

  function clearErrors(form) {
    var old = form.querySelectorAll(".leadmagnet-error");
    for (var i = 0; i < old.length; i++) old[i].parentNode.removeChild(old[i]);
    var marked = form.querySelectorAll("[aria-invalid]");
    for (var j = 0; j < marked.length; j++) {
      marked[j].removeAttribute("aria-invalid");
      marked[j].removeAttribute("aria-describedby");
    }
  }

  function showErrors(form, errors) {
    var first = null;
    Object.keys(errors).forEach(function (name) {
      var field = form.elements[name];
      var error = document.createElement("p");
      error.className = "leadmagnet-error";
      error.textContent = errors[name];
      if (field && field.parentNode && field.type !== "hidden") {
        error.id = (field.id || "leadmagnet-" + name) + "-error";
        field.parentNode.appendChild(error);
        field.setAttribute("aria-invalid", "true");
        field.setAttribute("aria-describedby", error.id);
        first = first || field;
      } else {
        statusOf(form).parentNode.insertBefore(error, statusOf(form));
      }
    });
    say(form, MESSAGES.invalid);
    if (first) first.focus();
  }

  function done(form) {
    var status = statusOf(form);
    for (var i = 0; i < form.children.length; i++) {
      if (form.children[i] !== status) form.children[i].hidden = true;
    }
    status.textContent = form.getAttribute("data-thanks") || MESSAGES.thanks;
    status.setAttribute("tabindex", "-1");
    status.focus(); // the button that had the focus is hidden now
  }

  function value(form, name) {
    var field = form.elements[name];
    return field && typeof field.value === "string" ? field.value : "";
  }

  function setUp(form) {
    if (form.getAttribute("data-leadmagnet-ready")) return;
    form.setAttribute("data-leadmagnet-ready", "true");
    form.noValidate = true; // the service's messages, beside the fields, for every browser
    var zone = form.elements.time_zone;
    if (!zone) {
      zone = document.createElement("input");
      zone.type = "hidden";
      zone.name = "time_zone";
      form.appendChild(zone);
    }
    try {
      zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) { /* no Intl: the sequence's default zone applies */ }
    statusOf(form);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.getAttribute("aria-busy") === "true") return;
      form.setAttribute("aria-busy", "true");
      clearErrors(form);
      say(form, "");
      var consent = form.elements.consent;
      var body = {
        email: value(form, "email"),
        first_name: value(form, "first_name"),
        consent: !!(consent && consent.checked),
        time_zone: zone.value,
        page: window.location.href
      };
      // Which guide this form is for: data-magnet="<slug>" (or a field named magnet).
      var magnet = form.getAttribute("data-magnet") || value(form, "magnet");
      if (magnet) body.magnet = magnet;
      fetch(endpoint, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (data) {
            if (response.status === 202) done(form);
            else if (response.status === 422 && data.errors) showErrors(form, data.errors);
            else if (response.status === 429) say(form, MESSAGES.busy);
            else say(form, MESSAGES.failed);
          });
        }, function () {
          say(form, MESSAGES.offline); // refused by CORS, or the network is down
        })
        .then(function () { form.removeAttribute("aria-busy"); });
    });
  }

  function start() {
    var forms = document.querySelectorAll("form[data-leadmagnet]");
    for (var i = 0; i < forms.length; i++) setUp(forms[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
