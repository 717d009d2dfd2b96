/* The booking calendar (templates/marketplace/booking_calendar.html). Clicking a free slot fills the
   booking form's start and end; a later free slot of the same day then extends the selection to it.
   The server prices the selection (…/book/quote) and says whether someone holds it. Without JavaScript
   every slot is a link that reloads the page with that slot chosen, and the form takes typed times.
   On a narrow screen a week opened without an explicit view switches to the day view. */
(function () {
  "use strict";
  var table = document.querySelector("[data-testid=booking-calendar]");
  if (!table) { return; }

  var params = new URLSearchParams(window.location.search);
  var dayLink = document.querySelector("[data-testid=day-view]");
  if (table.dataset.view === "week" && !params.has("view") && !params.has("start") && dayLink &&
      window.matchMedia("(max-width: 575.98px)").matches) {
    window.location.replace(dayLink.href);
    return;
  }

  var form = document.getElementById("booking-form");
  if (!form || !window.fetch) { return; }
  var startInput = form.querySelector("#start");
  var endInput = form.querySelector("#end");
  var price = form.querySelector("[data-testid=price]");
  var busyNote = form.querySelector("[data-testid=selection-busy]");
  var waitlist = document.querySelector("[data-testid=waitlist-form]");
  var voucherSelect = form.querySelector("#voucher_id");
  var breakdown = form.querySelector("[data-testid=voucher-breakdown]");
  var terms = form.querySelector("[data-testid=cancellation-terms-slot]");  // the cancellation terms of the slot
  var anchor = null;  // the first slot of the current selection

  function wallClock(iso) {  // "2026-12-07T09:00:00+08:00" → "2026-12-07T09:00", as a datetime-local input takes it
    return iso.slice(0, 16);
  }

  function column(td) {
    var cells = [];
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) { cells.push(row.cells[td.cellIndex]); });
    return cells;
  }

  function range(first, last) {  // the cells of first's column from first to last, or null if one is not free
    var cells = column(first);
    var from = cells.indexOf(first), to = cells.indexOf(last);
    if (from < 0 || to < from) { return null; }
    var picked = cells.slice(from, to + 1);
    return picked.every(function (td) { return td.dataset.state === "free"; }) ? picked : null;
  }

  function showQuote() {
    if (!startInput.value || !endInput.value) { return; }
    var query = new URLSearchParams({start: startInput.value, end: endInput.value});
    if (voucherSelect && voucherSelect.value !== "0") { query.set("voucher_id", voucherSelect.value); }
    fetch(table.dataset.quoteUrl + "?" + query.toString(), {credentials: "same-origin",
                                                           headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        price.textContent = answer.ok ? answer.body.text : answer.body.error.message;
        showVoucher(answer.ok ? answer.body : {});
        if (terms && answer.ok) { terms.innerHTML = answer.body.cancellation_html; }  // rendered by the server
        var busy = answer.ok && answer.body.busy;
        if (busyNote) { busyNote.classList.toggle("d-none", !busy); }
        if (waitlist) {
          waitlist.classList.toggle("d-none", !busy);
          waitlist.querySelector("[name=start]").value = startInput.value;
          waitlist.querySelector("[name=end]").value = endInput.value;
        }
      })
      .catch(function () { price.textContent = ""; });
  }

  function showVoucher(body) {  // the voucher's part and the enterprise's share, or why the voucher cannot pay
    if (!breakdown) { return; }
    var part = body.voucher;
    breakdown.classList.toggle("d-none", !part);
    if (part) {
      breakdown.querySelector("[data-testid=voucher-ratio]").textContent = part.ratio;
      breakdown.querySelector("[data-testid=voucher-part]").textContent = part.voucher_text;
      breakdown.querySelector("[data-testid=enterprise-share]").textContent = part.share_text;
      breakdown.querySelector("[data-testid=voucher-note]").textContent = part.note;
    }
    if (voucherSelect) {
      var feedback = voucherSelect.parentNode.querySelector(".invalid-feedback");
      voucherSelect.classList.toggle("is-invalid", !!body.voucher_error);
      if (body.voucher_error) {
        if (!feedback) {
          feedback = document.createElement("div");
          feedback.className = "invalid-feedback d-block";
          voucherSelect.parentNode.appendChild(feedback);
        }
        feedback.textContent = body.voucher_error.message;
      } else if (feedback) {
        feedback.textContent = "";
      }
    }
  }

  function select(cells) {
    Array.prototype.forEach.call(table.querySelectorAll(".slot-selected"), function (td) {
      td.classList.remove("slot-selected");
    });
    cells.forEach(function (td) { td.classList.add("slot-selected"); });
    startInput.value = wallClock(cells[0].dataset.start);
    endInput.value = wallClock(cells[cells.length - 1].dataset.end);
    showQuote();
  }

  table.addEventListener("click", function (event) {
    var td = event.target.closest("td.slot");
    if (!td || td.dataset.state !== "free") { return; }  // a busy slot's link opens the waitlist offer
    event.preventDefault();
    var extended = anchor && anchor !== td ? range(anchor, td) : null;
    if (!extended) { anchor = td; }
    select(extended || [td]);
    form.scrollIntoView({behavior: "smooth", block: "nearest"});
  });

  [startInput, endInput].forEach(function (input) {
    input.addEventListener("change", function () { anchor = null; showQuote(); });
  });
  if (voucherSelect) { voucherSelect.addEventListener("change", showQuote); }
})();
