// Copy buttons: <button data-copy-target="ID"> puts the text of the element #ID on the clipboard.
(function () {
  "use strict";

  var selectText = function (element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  };

  Array.prototype.forEach.call(document.querySelectorAll("[data-copy-target]"), function (button) {
    var label = button.textContent;
    var say = function (words) {
      button.textContent = words;
      window.setTimeout(function () { button.textContent = label; }, 2500);
    };
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copyTarget);
      var text = source.textContent.trim();
      // Without the Clipboard API (plain http), select the text so Ctrl+C copies it.
      var fallback = function () {
        selectText(source);
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
        say(copied ? "Copied" : "Press Ctrl+C");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { say("Copied"); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
