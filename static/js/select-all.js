// A "select all" checkbox (data-select-all="NAME") checks or clears every checkbox named NAME on the page.
(function () {
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    const selector = 'input[type="checkbox"][name="' + all.dataset.selectAll + '"]';
    all.addEventListener("change", function () {
      document.querySelectorAll(selector).forEach(function (box) { box.checked = all.checked; });
    });
  });
})();
