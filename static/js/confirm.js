// Ask before destructive form posts (forms with class js-confirm and a data-confirm text).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.classList && form.classList.contains("js-confirm") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
