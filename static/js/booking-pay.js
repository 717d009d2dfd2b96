// The card field of Stripe.js (localstripe's stand-in in development): its card becomes a payment
// method (Stripe) or a card id (the stand-in, whose createPaymentMethod does nothing) sent with the form.
// The form carries the publishable key and the page's messages (data-*).
(function () {
  const form = document.getElementById("card-form");
  if (!form) { return; }
  const method = document.getElementById("card-payment_method");
  const errors = document.getElementById("card-errors");
  if (typeof Stripe === "undefined") {
    errors.textContent = form.dataset.unavailable;
    return;
  }
  const stripe = Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();  // form.submit() below sends it without coming back here
    errors.textContent = "";
    let id = null;
    const made = await stripe.createPaymentMethod({type: "card", card: card});
    if (made && made.paymentMethod) {
      id = made.paymentMethod.id;
    } else if (!made || !made.error) {
      const token = await stripe.createToken(card);
      if (token.token) { id = token.token.card.id; }
      else { errors.textContent = (token.error && token.error.message) || form.dataset.checkCard; }
    } else {
      errors.textContent = made.error.message;
    }
    if (id) { method.value = id; form.submit(); }
  });
})();
