// Small enhancements; every page works without them.
(function () {
  "use strict";

  // Move focus to a form's error summary, so screen readers announce the problems at once.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) {
    summary.focus();
  }

  // Error summary links focus their field (and scroll it into view with its label).
  document.querySelectorAll(".error-summary a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      var label = document.querySelector("label[for='" + field.id + "']");
      (label || field).scrollIntoView();
      field.focus({ preventScroll: true });
    });
  });

  // "Copy token" buttons: hidden without JavaScript, since they need it.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.value).then(function () {
        button.textContent = "Copied";
      });
    });
  });
})();
