// Live status for a submission (polls the small JSON endpoint) and the Grad-CAM overlay toggle.
(function () {
  "use strict";

  var live = document.getElementById("live-status");
  if (live && window.fetch) {
    var url = live.dataset.statusUrl;
    var bar = document.getElementById("status-bar");
    var progress = document.getElementById("status-progress");
    var message = document.getElementById("status-message");
    var waitingModel = document.getElementById("waiting-model");
    var badge = document.getElementById("status-badge");
    var delay = 1000;

    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (status) {
          if (status.finished) {
            // The result section is rendered by the server: load it once, when it exists.
            window.location.reload();
            return;
          }
          bar.style.width = status.progress + "%";
          bar.textContent = status.progress + "%";
          progress.setAttribute("aria-valuenow", String(status.progress));
          message.textContent = status.message;
          badge.textContent = status.status_label;
          badge.className = badge.className.replace(/text-bg-\w+/, status.status === "running" ? "text-bg-primary" : "text-bg-secondary");
          waitingModel.classList.toggle("d-none", !status.waiting_for_model);
          delay = 1000;
          window.setTimeout(poll, status.waiting_for_model ? 5000 : delay);
        })
        .catch(function () {
          // Server restarting or network hiccup: back off, keep trying.
          delay = Math.min(delay * 2, 15000);
          window.setTimeout(poll, delay);
        });
    };
    window.setTimeout(poll, delay);
  }

  var player = document.querySelector("video[data-testid=video-player]");
  var unplayable = document.getElementById("video-unplayable");
  if (player && unplayable) {
    var showNote = function () { unplayable.classList.remove("d-none"); };
    player.addEventListener("error", showNote);
    if (player.canPlayType && player.error) showNote();
  }

  var toggle = document.getElementById("overlay-toggle");
  if (toggle) {
    toggle.addEventListener("change", function () {
      var images = document.querySelectorAll("img[data-overlay-src]");
      Array.prototype.forEach.call(images, function (img) {
        img.src = toggle.checked ? img.dataset.overlaySrc : img.dataset.cropSrc;
        img.classList.toggle("showing-overlay", toggle.checked);
      });
    });
  }
})();
