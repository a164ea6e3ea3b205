// The new-silence form's live preview: as the matchers change, ask alertd which open
// incidents they match (GET /silences/preview, an HTML fragment alertd escaped) and show it.
// Without this script the form's Preview button does the same with a round trip.
(function () {
  "use strict";
  var form = document.getElementById("silence-form");
  var box = document.getElementById("preview");
  if (!form || !box) { return; }
  var text = form.querySelector("textarea[name=matchers]");
  var timer = null, asked = 0;
  function refresh() {
    var mine = ++asked;
    fetch(form.dataset.preview + "?matchers=" + encodeURIComponent(text.value), {credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) { if (mine === asked) { box.innerHTML = html; box.dataset.for = text.value; } })
      .catch(function () {});
  }
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
})();
