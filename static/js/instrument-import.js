/* The instrument import form with a progress bar: the file is sent with XMLHttpRequest so the upload
   can be shown, then "checking…" until the server answers. A good import answers with JSON naming the
   page to go to; anything else is a page (the errors table, a message), whose main part replaces ours.
   Without JavaScript the form posts as usual. */
(function () {
  "use strict";
  if (window.kequipImportBound || !window.FormData || !window.DOMParser) { return; }
  window.kequipImportBound = true;

  function setProgress(form, percent, text, busy) {
    var box = form.querySelector("[data-import-progress]");
    var bar = box.querySelector(".progress-bar");
    box.classList.remove("d-none");
    box.setAttribute("aria-valuenow", String(percent));
    bar.style.width = percent + "%";
    bar.classList.toggle("progress-bar-striped", busy);
    bar.classList.toggle("progress-bar-animated", busy);
    form.querySelector("[data-import-status]").textContent = text;
  }

  function showPage(html, url) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var main = page.querySelector("main");
    if (!main) { return false; }
    document.querySelector("main").innerHTML = main.innerHTML;
    if (page.title) { document.title = page.title; }
    if (url && url !== window.location.href) { window.history.replaceState(null, "", url); }
    window.scrollTo(0, 0);
    return true;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-import-form]")) { return; }
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) { return; }  /* the server says what is missing */
    event.preventDefault();
    var button = form.querySelector("[type=submit]");
    if (file.size > Number(form.dataset.maxBytes)) {
      setProgress(form, 0, form.dataset.tooLarge, false);
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        setProgress(form, Math.round(e.loaded * 100 / e.total), form.dataset.uploading, false);
      }
    };
    xhr.upload.onload = function () { setProgress(form, 100, form.dataset.processing, true); };
    xhr.onload = function () {
      var type = xhr.getResponseHeader("Content-Type") || "";
      if (type.indexOf("application/json") === 0) {
        var answer = JSON.parse(xhr.responseText);
        if (answer.redirect) { window.location.assign(answer.redirect); return; }
      }
      if (!showPage(xhr.responseText, xhr.responseURL)) {
        setProgress(form, 0, form.dataset.failed, false);
        button.disabled = false;
      }
    };
    xhr.onerror = function () {
      setProgress(form, 0, form.dataset.failed, false);
      button.disabled = false;
    };
    button.disabled = true;
    setProgress(form, 0, form.dataset.uploading, false);
    xhr.send(new FormData(form));
  });
}());
