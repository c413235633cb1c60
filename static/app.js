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
  const cartsText = (n) => (n === 1 ? "in 1 cart" : n ? `in ${n} carts` : "in no carts yet");

  class ApiError extends Error {
    constructor(message, status = 0, retryAfter = null) {
      super(message);
      this.status = status; // 0: the shop could not be reached
      this.retryAfter = retryAfter; // seconds, from the Retry-After header
    }

    // The store was busy or the network failed: the write may or may not
    // have happened, so only the same Idempotency-Key may try it again.
    get retryable() {
      return this.status === 0 || this.status === 503 || this.status === 429;
    }
  }

  // One request to the JSON API; a failure carries the API's own Message.
  async function api(method, path, payload, key) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    if (key) init.headers["Idempotency-Key"] = key;
    let response;
    try {
      response = await fetch(base + path, init);
    } catch {
      throw new ApiError("The shop could not be reached. Check the connection and try again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const after = Number.parseFloat(response.headers.get("Retry-After") || "");
      throw new ApiError((data && data.Message) || `The request failed (${response.status}).`,
        response.status, Number.isFinite(after) ? after : null);
    }
    return data;
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A busy or unreachable shop is tried again, a bounded number of times,
  // after the wait the server asks for (or a growing one), with the same key.
  const ATTEMPTS = 4;
  async function withRetries(method, path, payload, key, onRetry) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await api(method, path, payload, key);
      } catch (error) {
        if (!(error instanceof ApiError) || !error.retryable || attempt >= ATTEMPTS) throw error;
        const backoff = 500 * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
        const wait = error.retryAfter === null ? backoff : error.retryAfter * 1000;
        if (onRetry) onRetry(error);
        await sleep(Math.min(Math.max(wait, 200), 10000));
      }
    }
  }

  // One key per shopper intent. A write whose outcome is unknown (busy shop,
  // lost connection) leaves its key with its control: the shopper's own retry
  // of the same request reuses it, so it still applies at most once.
  const pendingKeys = new WeakMap();
  function keyFor(control, fingerprint) {
    const pending = pendingKeys.get(control);
    if (pending && pending.fingerprint === fingerprint) return pending.key;
    return newKey();
  }

  function setBusy(control, busy) {
    if (!control) return;
    if (busy) {
      control.dataset.hadFocus = document.activeElement === control ? "1" : "";
      control.disabled = true;
      control.setAttribute("aria-busy", "true");
      return;
    }
    control.disabled = false;
    control.removeAttribute("aria-busy");
    // A disabled button loses focus; a keyboard user keeps their place.
    if (control.dataset.hadFocus && document.activeElement === document.body) control.focus();
  }

  // Writes run one at a time, in the order they were asked for: a new visitor's
  // first write creates the cart and sets its cookie, and every later write
  // waits for it, so rapid clicks neither lose an add nor split the cart.
  // The control is busy (disabled, aria-busy) from the click to the answer.
  let writes = Promise.resolve();
  function write(method, path, payload, control, onRetry) {
    const fingerprint = JSON.stringify([method, path, payload]);
    const key = keyFor(control, fingerprint);
    setBusy(control, true);
    const result = writes.then(() => withRetries(method, path, payload, key, onRetry));
    writes = result.catch(() => undefined);
    return result.then((data) => {
      pendingKeys.delete(control);
      return data;
    }, (error) => {
      if (error.retryable && control) pendingKeys.set(control, { key, fingerprint });
      else pendingKeys.delete(control);
      throw error;
    }).finally(() => setBusy(control, false));
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
    if (run !== settling) return null;
    let cart;
    try {
      cart = await api("GET", "/api/cart");
    } catch {
      return null;
    }
    const deadline = Date.now() + 3000;
    for (let delay = 100; run === settling; delay = Math.min(delay * 1.5, 400)) {
      const status = await api("GET", "/api/cart/status").catch(() => null);
      if (run !== settling) return cart;
      if (status && status.itemCount === cart.itemCount &&
          status.subtotalCents === cart.subtotalCents) {
        showBadge(status.itemCount, status.subtotalCents, status.currency);
        return cart;
      }
      if (Date.now() + delay > deadline) break;
      await sleep(delay);
    }
    if (run === settling) showBadge(cart.itemCount, cart.subtotalCents, cart.currency);
    return cart;
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

  const BUSY_NOTE = "The shop is busy; trying again…";

  // The browser hints 1..99, but the server judges: whatever was typed goes out.
  function readQuantity(input) {
    const number = input.valueAsNumber;
    return Number.isFinite(number) ? number : input.value;
  }

  // -- the shop: what each card says is in the cart, and in how many carts -----

  const cards = () => document.querySelectorAll('[data-testid="product-card"]');

  function showInCart(card, quantity) {
    const holder = card.querySelector('[data-testid="in-cart"]');
    if (!holder) return;
    holder.querySelector('[data-role="in-cart-qty"]').textContent = String(quantity);
    holder.hidden = !quantity;
  }

  function showInCartFrom(cart) {
    const held = new Map(cart.items.map((item) => [item.productId, item.quantity]));
    for (const card of cards()) showInCart(card, held.get(card.dataset.productId) || 0);
  }

  // "in N carts" is kept by a stream follow-up, a moment after the write: ask
  // the products list a few times, until the product whose count should move does.
  async function refreshPopularity(movedProductId) {
    const shown = (card) => card.querySelector('[data-role="in-carts"]');
    const counts = () => new Map(Array.from(cards(), (c) => [c.dataset.productId,
      Number(shown(c).dataset.count)]));
    const before = counts();
    for (let delay = 300, tries = movedProductId ? 4 : 1; tries > 0; tries--, delay *= 2) {
      const data = await api("GET", "/api/products").catch(() => null);
      if (data) {
        for (const product of data.products) {
          const card = document.querySelector(
            `[data-testid="product-card"][data-product-id="${CSS.escape(product.id)}"]`);
          if (!card) continue;
          shown(card).dataset.count = String(product.inCarts);
          shown(card).textContent = cartsText(product.inCarts);
        }
        if (!movedProductId || counts().get(movedProductId) !== before.get(movedProductId)) return;
      }
      if (tries > 1) await sleep(delay);
    }
  }

  async function addToCart(form) {
    const input = form.elements.quantity;
    const button = form.querySelector('button[type="submit"]');
    const errorEl = form.querySelector(".error");
    const note = form.querySelector('[data-testid="added"]');
    const card = form.closest('[data-testid="product-card"]');
    const quantity = readQuantity(input);
    const productId = form.dataset.productId;
    clearError(errorEl, input);
    note.textContent = "";
    let line;
    try {
      line = await write("POST", "/api/cart/items", { productId, quantity }, button, () => {
        note.textContent = BUSY_NOTE;
      });
    } catch (error) {
      note.textContent = "";
      showError(errorEl, input, error.message);
      return;
    }
    const name = card.querySelector("h2").textContent;
    note.textContent = `Added ${quantity} × ${name} to the cart.`;
    showInCart(card, line.quantity);
    await settleBadge();
    // The cart held none before this add: this product is in one more cart.
    refreshPopularity(line.quantity === quantity ? productId : null);
  }

  // -- the cart page -----------------------------------------------------------

  // Lines, quantities, totals and the empty state from display-cart. A line the
  // page does not show (added in another tab) needs the server's markup: reload.
  async function refreshCart() {
    let cart;
    try {
      cart = await api("GET", "/api/cart");
    } catch {
      return null;
    }
    const byId = new Map(cart.items.map((item) => [item.productId, item]));
    const shown = new Set();
    for (const line of document.querySelectorAll('[data-testid="cart-line"]')) {
      const item = byId.get(line.dataset.productId);
      if (!item) {
        line.remove();
        continue;
      }
      shown.add(item.productId);
      line.querySelector('[data-role="line-total"]').textContent =
        money(item.lineTotalCents, cart.currency);
      // Today's price, what it was when added, and how many are left.
      line.querySelector('[data-role="unit"]').textContent =
        `${money(item.unitPriceCents, cart.currency)} each`;
      const changed = line.querySelector('[data-role="price-changed"]');
      changed.hidden = !item.priceChanged;
      if (item.priceChanged) {
        changed.textContent = `Price changed: was ${money(item.previousPriceCents, cart.currency)}`;
      }
      const stock = line.querySelector('[data-role="availability"]');
      stock.hidden = !item.availability;
      stock.textContent = item.availability || "";
      if (item.withdrawn !== line.hasAttribute("data-withdrawn")) {
        window.location.reload(); // withdrawn meanwhile: the server's markup has no quantity box
        return cart;
      }
      const input = line.querySelector('[data-testid="line-quantity"]');
      if (!input) continue;
      if (document.activeElement !== input || input.getAttribute("aria-invalid")) {
        input.value = String(item.quantity);
        input.dataset.sent = input.value;
      }
    }
    if (cart.items.some((item) => !shown.has(item.productId))) {
      window.location.reload();
      return cart;
    }
    const section = document.querySelector('[data-role="cart"]');
    section.querySelector('[data-role="item-count"]').textContent = String(cart.itemCount);
    section.querySelector('[data-role="count-word"]').textContent = itemWord(cart.itemCount);
    section.querySelector('[data-role="subtotal"]').textContent =
      money(cart.subtotalCents, cart.currency);
    const empty = cart.items.length === 0;
    section.hidden = empty;
    document.querySelector('[data-role="empty"]').hidden = !empty;
    return cart;
  }

  async function setQuantity(form) {
    const input = form.elements.quantity;
    const button = form.querySelector('button[type="submit"]');
    const line = form.closest('[data-testid="cart-line"]');
    const errorEl = line.querySelector(".error");
    const quantity = readQuantity(input);
    // Enter submits and the same edit fires change on blur: send it once.
    if (String(quantity) === input.dataset.sent) return;
    input.dataset.sent = String(quantity);
    clearError(errorEl, input);
    // PUT sets an absolute quantity: sent twice, it leaves the same line.
    const path = `/api/cart/items/${encodeURIComponent(form.dataset.productId)}`;
    try {
      await write("PUT", path, { quantity }, button, () => announce(BUSY_NOTE));
    } catch (error) {
      showError(errorEl, input, error.message);
      // The box shows what the cart holds, not the refused number.
      await refreshCart();
      settleBadge();
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
    // DELETE of a line that is gone is still a 204: a repeat changes nothing.
    const path = `/api/cart/items/${encodeURIComponent(button.dataset.productId)}`;
    try {
      await write("DELETE", path, undefined, button, () => announce(BUSY_NOTE));
    } catch (error) {
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
    try {
      const order = await write("POST", "/api/cart/checkout", undefined, button,
        () => announce(BUSY_NOTE));
      button.disabled = true; // until the order page replaces this one
      window.location.assign(`${base}/orders/${encodeURIComponent(order.orderId)}`);
    } catch (error) {
      showError(errorEl, null, error.message);
      // A 409 may have put today's prices on the lines: show what the next try charges.
      await refreshCart();
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

  // -- wiring ------------------------------------------------------------------

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

  // Everything the page shows about the cart, read again from the server.
  async function refreshPage() {
    const page = document.body.dataset.page;
    if (page === "cart") await refreshCart();
    const cart = await settleBadge();
    if (page === "shop") {
      if (cart) showInCartFrom(cart);
      refreshPopularity(null);
    }
  }

  for (const input of document.querySelectorAll('[data-testid="line-quantity"]')) {
    input.dataset.sent = input.value;
  }
  const order = document.querySelector('[data-role="order"]');
  if (order) followOrder(order);
  // Back and forward may show a page from before the last write: restored
  // from memory (bfcache: persisted) or its HTML from the HTTP cache.
  const [navigation] = performance.getEntriesByType("navigation");
  if (navigation && navigation.type === "back_forward") refreshPage();
  else settleBadge();
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) refreshPage();
  });
})();
