// Checkout in payment_element mode: mounts Stripe's Payment Element for the order's
// PaymentIntent and confirms it in the browser; Stripe redirects to the return page.
// Configuration comes from the page's JSON (no inline script, so the CSP needs no 'unsafe-inline').
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("stripe-config").textContent);
  var form = document.getElementById("payment-form");
  var button = document.getElementById("pay-button");
  var message = document.getElementById("payment-message");
  var payLabel = form.getAttribute("data-pay-label");

  if (typeof Stripe === "undefined") {
    message.textContent = "The secure card form could not be loaded. Please reload the page.";
    return;
  }
  var stripe = Stripe(config.publishableKey);
  var elements = stripe.elements({ clientSecret: config.clientSecret });
  var paymentElement = elements.create("payment");
  paymentElement.on("ready", function () { button.disabled = false; });
  paymentElement.mount("#payment-element");

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    button.disabled = true;
    button.textContent = "Processing…";
    message.textContent = "";
    // Only reached when confirmation fails before any redirect: a decline or invalid details.
    var result = await stripe.confirmPayment({
      elements: elements,
      confirmParams: { return_url: config.returnUrl },
    });
    if (result.error) {
      message.textContent = result.error.message || "The payment could not be completed.";
    }
    button.disabled = false;
    button.textContent = payLabel;
  });
})();
