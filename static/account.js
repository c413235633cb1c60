// chalice-cart: the account page's forms (sign up, confirm, sign in, sign out).
// Loaded on /account only. Every URL starts from <body data-base>, as in app.js.
"use strict";
(() => {
  const base = document.body.dataset.base || "";

  async function post(path, payload) {
    const init = { method: "POST", headers: { Accept: "application/json" },
      credentials: "same-origin" };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(base + path, init);
    } catch {
      throw new Error("The shop could not be reached. Check the connection and try again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error((data && data.Message) || `The request failed (${response.status}).`);
    }
    return data;
  }

  // The field the message is about gets the focus and aria-invalid: the server's
  // Message names it ("password", "code", "e-mail"); otherwise the first field.
  function fail(form, message) {
    const error = form.querySelector(".error");
    error.textContent = message;
    error.hidden = false;
    const about = [["password", "password"], ["code", "code"], ["e-mail", "email"],
      ["email", "email"]].find(([word, name]) => message.includes(word) && form.elements[name]);
    const input = about ? form.elements[about[1]] : form.querySelector("input");
    if (!input) return;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function clear(form) {
    const error = form.querySelector(".error");
    error.textContent = "";
    error.hidden = true;
    for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  }

  function notice(form, message) {
    const el = form.querySelector('[data-role="notice"]');
    if (!el) return;
    el.textContent = message;
    el.hidden = !message;
  }

  function form(action) {
    return document.querySelector(`form[data-action="${action}"]`);
  }

  const handlers = {
    async signup(el) {
      const email = el.elements.email.value.trim();
      const result = await post("/api/account/signup",
        { email, password: el.elements.password.value });
      el.reset();
      const confirm = form("confirm");
      confirm.elements.email.value = result.email;
      notice(confirm, `We sent a confirmation code to ${result.email}.`);
      confirm.elements.code.focus();
    },
    async confirm(el) {
      const email = el.elements.email.value.trim();
      await post("/api/account/confirm", { email, code: el.elements.code.value.trim() });
      el.reset();
      notice(el, "");
      const signin = form("signin");
      signin.elements.email.value = email;
      notice(signin, "Your e-mail is confirmed: sign in now.");
      signin.elements.password.focus();
    },
    async signin(el) {
      const result = await post("/api/account/signin", {
        email: el.elements.email.value.trim(), password: el.elements.password.value,
      });
      const merged = result.merged || { excess: [], leftBehind: [] };
      const notes = merged.excess.map((line) =>
        `${line.quantity} × ${line.productId} did not fit (a line holds at most 99)`);
      if (merged.leftBehind.length) {
        notes.push(`your cart had no room for: ${merged.leftBehind.join(", ")}`);
      }
      if (!notes.length) {
        window.location.assign(`${base}/cart`);
        return;
      }
      el.elements.password.value = "";
      notice(el, `Signed in as ${result.email}. Note: ${notes.join("; ")}.`);
      const link = document.createElement("a");
      link.href = `${base}/cart`;
      link.textContent = "Go to your cart";
      el.querySelector('[data-role="notice"]').append(" ", link);
    },
    async signout() {
      await post("/api/account/signout");
      window.location.assign(`${base}/`);
    },
  };

  document.addEventListener("submit", async (event) => {
    const el = event.target;
    const handler = el instanceof HTMLFormElement && handlers[el.dataset.action];
    if (!handler) return;
    event.preventDefault();
    const button = el.querySelector('button[type="submit"]');
    clear(el);
    button.disabled = true;
    try {
      await handler(el);
    } catch (error) {
      fail(el, error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
