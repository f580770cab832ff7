// Upload with a progress bar (XMLHttpRequest upload events) and an early size check.
// Without JavaScript the form still posts normally; the server validates either way.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;

  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var fileInput = form.querySelector('input[type="file"]');
  var errors = document.getElementById("upload-errors");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-progress-bar");
  var percent = document.getElementById("upload-progress-percent");
  var label = document.getElementById("upload-progress-label");
  var submit = document.getElementById("upload-submit");

  function showErrors(messages) {
    errors.textContent = "";
    messages.forEach(function (text) {
      var line = document.createElement("div");
      line.textContent = text;
      errors.appendChild(line);
    });
    errors.classList.toggle("d-none", messages.length === 0);
  }

  function setProgress(value, text) {
    var rounded = Math.round(value);
    bar.style.width = rounded + "%";
    bar.parentNode.setAttribute("aria-valuenow", String(rounded));
    percent.textContent = rounded + "%";
    if (text) label.textContent = text;
  }

  function tooLarge(file) {
    return file && maxBytes && file.size > maxBytes;
  }

  function sizeMessage(file) {
    var mb = (file.size / (1024 * 1024)).toFixed(1);
    return "This file is " + mb + " MB; the limit is " + form.dataset.maxSizeText +
      ". Trim the video or re-encode it at a lower bitrate, then upload it again.";
  }

  if (fileInput) {
    fileInput.addEventListener("change", function () {
      var file = fileInput.files[0];
      showErrors(tooLarge(file) ? [sizeMessage(file)] : []);
    });
  }

  form.addEventListener("submit", function (event) {
    var file = fileInput && fileInput.files[0];
    var linkInput = form.querySelector('input[name="link"]');
    // A link is a short form post: the server answers at once and the fetch runs as a job.
    if (linkInput && linkInput.value.trim()) return;
    event.preventDefault();
    if (!file) {
      showErrors(["Choose a video file or paste a link."]);
      return;
    }
    if (tooLarge(file)) {
      showErrors([sizeMessage(file)]);
      return;
    }
    showErrors([]);
    submit.disabled = true;
    box.classList.remove("d-none");
    setProgress(0, "Uploading…");

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) setProgress((e.loaded / e.total) * 100, "Uploading…");
    });
    xhr.upload.addEventListener("load", function () {
      setProgress(100, "Checking the video…");
    });
    xhr.addEventListener("load", function () {
      var body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300 && body.redirect) {
        label.textContent = "Done. Opening the analysis…";
        window.location.assign(body.redirect);
        return;
      }
      var messages = [];
      if (body.errors) {
        Object.keys(body.errors).forEach(function (field) {
          messages = messages.concat(body.errors[field]);
        });
      }
      if (xhr.status === 413) messages.push("The file is too large for the server.");
      if (!messages.length) messages.push("The upload failed (HTTP " + xhr.status + "). Please try again.");
      showErrors(messages);
      box.classList.add("d-none");
      submit.disabled = false;
    });
    xhr.addEventListener("error", function () {
      showErrors(["The connection was lost during the upload. Check your network and try again."]);
      box.classList.add("d-none");
      submit.disabled = false;
    });
    xhr.send(new FormData(form));
  });
})();
