// chalice-cart: the shop, cart and order pages' behaviour. No framework, no build.
// Every URL starts from <body data-base>: "" under chalice local, "/api" deployed.
"use strict";
(() => {
  const base = document.body.dataset.base || "";
  const badge = {
    count: document.querySelector('[data-testid="cart-count"]'),
    word: document.querySelector('.badge [data-role="count-word"]'),
    subtotal: document.querySelector('[data-testid="cart-subtotal"]'),
  };
  const live = document.getElementById("live");
  const formats = new Map();
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function money(cents, currency = "USD") {
    if (!formats.has(currency)) {
      formats.set(currency, new Intl.NumberFormat("en-US", { style: "currency", currency }));
    }
    return formats.get(currency).format(cents / 100);
  }

  const itemWord = (count) => (count === 1 ? "item" : "items");

  class ApiError extends Error {}

  // One request to the JSON API; a failure carries the API's own Message.
  async function api(method, path, payload) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(base + path, init);
    } catch {
      throw new ApiError("The shop could not be reached. Check the connection and try again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError((data && data.Message) || `The request failed (${response.status}).`);
    }
    return data;
  }

  // Writes run one at a time, in the order they were asked for: a new visitor's
  // first write creates the cart and sets its cookie, and every later write
  // waits for it, so rapid clicks neither lose an add nor split the cart.
  let writes = Promise.resolve();
  function write(method, path, payload) {
    const result = writes.then(() => api(method, path, payload));
    writes = result.catch(() => undefined);
    return result;
  }

  function showBadge(count, subtotalCents, currency) {
    if (!badge.count) return;
    badge.count.textContent = String(count);
    badge.word.textContent = itemWord(count);
    badge.subtotal.textContent = money(subtotalCents, currency);
  }

  // The badge reads cart-status, which a stream follow-up writes a moment after
  // the cart changes. Poll it, briefly, until it agrees with the cart itself;
  // if the follow-up is late, show the cart's own numbers meanwhile.
  let settling = 0;
  async function settleBadge() {
    const run = ++settling;
    await writes;
    if (run !== settling) return;
    let cart;
    try {
      cart = await api("GET", "/api/cart");
    } catch {
      return;
    }
    const deadline = Date.now() + 3000;
    for (let delay = 100; run === settling; delay = Math.min(delay * 1.5, 400)) {
      const status = await api("GET", "/api/cart/status").catch(() => null);
      if (run !== settling) return;
      if (status && status.itemCount === cart.itemCount &&
          status.subtotalCents === cart.subtotalCents) {
        showBadge(status.itemCount, status.subtotalCents, status.currency);
        return;
      }
      if (Date.now() + delay > deadline) break;
      await sleep(delay);
    }
    if (run === settling) showBadge(cart.itemCount, cart.subtotalCents, cart.currency);
  }

  function showError(errorEl, input, message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
    if (input) input.setAttribute("aria-invalid", "true");
  }

  function clearError(errorEl, input) {
    errorEl.textContent = "";
    errorEl.hidden = true;
    if (input) input.removeAttribute("aria-invalid");
  }

  function announce(message) {
    if (live) live.textContent = message;
  }

  // The browser hints 1..99, but the server judges: whatever was typed goes out.
  function readQuantity(input) {
    const number = input.valueAsNumber;
    return Number.isFinite(number) ? number : input.value;
  }

  async function addToCart(form) {
    const input = form.elements.quantity;
    const errorEl = form.querySelector(".error");
    const quantity = readQuantity(input);
    clearError(errorEl, input);
    try {
      await write("POST", "/api/cart/items", { productId: form.dataset.productId, quantity });
    } catch (error) {
      showError(errorEl, input, error.message);
      return;
    }
    const name = form.closest('[data-testid="product-card"]').querySelector("h2").textContent;
    announce(`Added ${quantity} × ${name} to the cart.`);
    settleBadge();
  }

  // Line totals, the subtotal and the empty state from display-cart.
  async function refreshCart() {
    let cart;
    try {
      cart = await api("GET", "/api/cart");
    } catch {
      return;
    }
    const totals = new Map(cart.items.map((item) => [item.productId, item.lineTotalCents]));
    for (const line of document.querySelectorAll('[data-testid="cart-line"]')) {
      if (!totals.has(line.dataset.productId)) {
        line.remove();
        continue;
      }
      const total = line.querySelector('[data-role="line-total"]');
      total.textContent = money(totals.get(line.dataset.productId), cart.currency);
    }
    const section = document.querySelector('[data-role="cart"]');
    section.querySelector('[data-role="item-count"]').textContent = String(cart.itemCount);
    section.querySelector('[data-role="count-word"]').textContent = itemWord(cart.itemCount);
    section.querySelector('[data-role="subtotal"]').textContent =
      money(cart.subtotalCents, cart.currency);
    const empty = cart.items.length === 0;
    section.hidden = empty;
    document.querySelector('[data-role="empty"]').hidden = !empty;
  }

  async function setQuantity(form) {
    const input = form.elements.quantity;
    const line = form.closest('[data-testid="cart-line"]');
    const errorEl = line.querySelector(".error");
    const quantity = readQuantity(input);
    // Enter submits and the same edit fires change on blur: send it once.
    if (String(quantity) === input.dataset.sent) return;
    input.dataset.sent = String(quantity);
    clearError(errorEl, input);
    try {
      const path = `/api/cart/items/${encodeURIComponent(form.dataset.productId)}`;
      await write("PUT", path, { quantity });
    } catch (error) {
      input.dataset.sent = "";
      showError(errorEl, input, error.message);
      return;
    }
    announce(`Quantity set to ${quantity}.`);
    await refreshCart();
    settleBadge();
  }

  function focusAfterRemoving(line) {
    const next = line.nextElementSibling || line.previousElementSibling;
    const target = next ? next.querySelector('[data-action="remove"]')
      : document.querySelector('[data-role="empty"] a');
    if (target) target.focus();
  }

  async function removeLine(button) {
    const line = button.closest('[data-testid="cart-line"]');
    const errorEl = line.querySelector(".error");
    clearError(errorEl, null);
    button.setAttribute("aria-busy", "true");
    try {
      await write("DELETE", `/api/cart/items/${encodeURIComponent(button.dataset.productId)}`);
    } catch (error) {
      button.removeAttribute("aria-busy");
      showError(errorEl, null, error.message);
      return;
    }
    const name = line.querySelector("h2").textContent;
    focusAfterRemoving(line);
    line.remove();
    announce(`Removed ${name}.`);
    await refreshCart();
    settleBadge();
  }

  async function checkout(button) {
    const errorEl = document.getElementById("error-checkout");
    clearError(errorEl, null);
    button.disabled = true;
    try {
      const order = await write("POST", "/api/cart/checkout");
      window.location.assign(`${base}/orders/${encodeURIComponent(order.orderId)}`);
    } catch (error) {
      button.disabled = false;
      showError(errorEl, null, error.message);
    }
  }

  // A new order is PLACED; a stream follow-up confirms it a moment later.
  async function followOrder(section) {
    const statusEl = section.querySelector('[data-testid="order-status"]');
    const path = `/api/orders/${encodeURIComponent(section.dataset.orderId)}`;
    const deadline = Date.now() + 120000;
    for (let delay = 200; Date.now() < deadline; delay = Math.min(delay * 1.5, 3000)) {
      if (statusEl.textContent.trim() === "CONFIRMED") break;
      await sleep(delay);
      const order = await api("GET", path).catch(() => null);
      if (order) {
        statusEl.textContent = order.status;
        statusEl.className = `status-${order.status.toLowerCase()}`;
      }
    }
    const hint = section.querySelector('[data-role="status-hint"]');
    if (hint && statusEl.textContent.trim() === "CONFIRMED") hint.hidden = true;
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.action === "add") addToCart(form);
    if (form.dataset.action === "set") setQuantity(form);
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches('[data-testid="line-quantity"]')) setQuantity(event.target.form);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "remove") removeLine(button);
    if (button.dataset.action === "checkout") checkout(button);
  });

  for (const input of document.querySelectorAll('[data-testid="line-quantity"]')) {
    input.dataset.sent = input.value;
  }
  const order = document.querySelector('[data-role="order"]');
  if (order) followOrder(order);
  settleBadge();
  // Back/forward restores a page from memory: its badge may be old.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) settleBadge();
  });
})();
