// The visit form on a phone with a weak network (no inline scripts: the CSP forbids them).
//
// - A checklist item's "问题说明" shows only when "有问题" is chosen (or when it carries an error).
// - Forms marked data-offline (the new-visit form) keep what was typed in localStorage, restore it
//   on the next load, and send with fetch: a send that fails for lack of network is retried when
//   the connection returns (and on the next page load). The form's idempotency key travels with
//   the copy, so a retry after a lost response returns the visit already made instead of a second.
// User-facing texts come from the template (data-msg-* attributes), never from this file.
(() => {
  "use strict";

  const form = document.getElementById("visit-form");
  if (!form) {
    return;
  }

  // --- Checklist notes -------------------------------------------------------------------------

  function syncNote(box) {
    const group = box.getAttribute("data-note-for");
    const chosen = form.querySelector(`input[name="${group}"]:checked`);
    const concern = chosen !== null && chosen.value === "concern";
    const hasError = box.querySelector(".sh-field-error, .errorlist") !== null;
    box.classList.toggle("sh-collapsed", !(concern || hasError));
    return concern;
  }

  function syncNotes() {
    form.querySelectorAll("[data-note-for]").forEach(syncNote);
  }

  form.addEventListener("change", (event) => {
    const el = event.target;
    if (!(el instanceof HTMLInputElement) || el.type !== "radio") {
      return;
    }
    const box = form.querySelector(`[data-note-for="${el.name}"]`);
    if (box && syncNote(box)) {
      const input = box.querySelector("input, textarea");
      if (input && input.value.trim() === "") {
        input.focus();
      }
    }
  });
  syncNotes();

  if (!form.hasAttribute("data-offline")) {
    return;
  }

  // --- The copy in localStorage ----------------------------------------------------------------

  const PREFIX = `shouhu.visit.${form.dataset.user || "-"}.${form.dataset.child || "-"}.`;
  const MAX_AGE_MS = 30 * 24 * 3600 * 1000;
  const SKIP = new Set(["csrfmiddlewaretoken", "key", "action"]);
  const keyInput = form.querySelector('input[name="key"]');
  const offlineNote = document.getElementById("visit-offline");
  const restoredNote = document.getElementById("visit-restored");
  let sending = false;
  let chosenAction = null; // the button pressed: "submit" or "draft"
  let pending = false; // a send is owed (also known without localStorage)
  let retryTimer = null;
  let retryDelay = 5000;

  function storage() {
    try {
      return window.localStorage;
    } catch (err) {
      return null; // storage disabled: the form still works, it only forgets on reload
    }
  }

  function storageKey() {
    return PREFIX + form.dataset.key;
  }

  function readCopy(name) {
    const store = storage();
    if (!store) {
      return null;
    }
    try {
      return JSON.parse(store.getItem(name) || "null");
    } catch (err) {
      return null;
    }
  }

  function collect() {
    const fields = {};
    for (const el of form.elements) {
      if (!el.name || SKIP.has(el.name) || el.type === "file" || el.type === "submit" || el.type === "button") {
        continue;
      }
      if (el.type === "checkbox") {
        fields[el.name] = fields[el.name] || [];
        if (el.checked) {
          fields[el.name].push(el.value);
        }
      } else if (el.type === "radio") {
        if (!(el.name in fields)) {
          fields[el.name] = null;
        }
        if (el.checked) {
          fields[el.name] = el.value;
        }
      } else {
        fields[el.name] = el.value;
      }
    }
    return fields;
  }

  function save(extra) {
    const store = storage();
    if (!store) {
      return;
    }
    const before = readCopy(storageKey()) || {};
    const copy = { key: form.dataset.key, saved: Date.now(), pending: false, action: "submit",
                   ...before, ...extra, fields: collect() };
    copy.saved = Date.now();
    try {
      store.setItem(storageKey(), JSON.stringify(copy));
    } catch (err) {
      // Quota exceeded: nothing better to do than keep the form as it is on screen.
    }
  }

  function forget() {
    const store = storage();
    if (store) {
      store.removeItem(storageKey());
    }
  }

  function restore(fields) {
    for (const el of form.elements) {
      if (!el.name || !(el.name in fields) || SKIP.has(el.name) || el.type === "file") {
        continue;
      }
      const value = fields[el.name];
      if (el.type === "checkbox") {
        el.checked = Array.isArray(value) && value.includes(el.value);
      } else if (el.type === "radio") {
        el.checked = value === el.value;
      } else if (typeof value === "string") {
        el.value = value;
      }
    }
    syncNotes();
  }

  // The newest copy of this user's form for this child: a reload renders a new key, so the copy
  // brings its own key back and a resend cannot make a second visit. Old copies are dropped.
  function newestCopy() {
    const store = storage();
    if (!store) {
      return null;
    }
    let best = null;
    const now = Date.now();
    for (let i = store.length - 1; i >= 0; i -= 1) {
      const name = store.key(i);
      if (!name || !name.startsWith("shouhu.visit.")) {
        continue;
      }
      const copy = readCopy(name);
      if (!copy || typeof copy.saved !== "number" || now - copy.saved > MAX_AGE_MS) {
        store.removeItem(name);
        continue;
      }
      if (name.startsWith(PREFIX) && copy.key && (!best || copy.saved > best.saved)) {
        best = copy;
      }
    }
    return best;
  }

  function adoptKey(key) {
    form.dataset.key = key;
    if (keyInput) {
      keyInput.value = key;
    }
  }

  // --- Messages --------------------------------------------------------------------------------

  function show(el, visible) {
    if (el) {
      el.classList.toggle("d-none", !visible);
    }
  }

  function clearErrors() {
    form.querySelectorAll("[data-js-error]").forEach((el) => el.remove());
    form.querySelectorAll(".sh-js-invalid").forEach((el) => el.classList.remove("sh-field-error", "sh-js-invalid"));
  }

  function errorList(messages) {
    const list = document.createElement("ul");
    list.className = "errorlist";
    list.setAttribute("role", "alert");
    list.setAttribute("data-js-error", "");
    for (const text of messages) {
      const item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    }
    return list;
  }

  function showTopError(messages) {
    const box = document.createElement("div");
    box.className = "alert alert-danger";
    box.setAttribute("role", "alert");
    box.setAttribute("data-js-error", "");
    for (const text of messages) {
      const line = document.createElement("div");
      line.textContent = text;
      box.appendChild(line);
    }
    form.prepend(box);
    return box;
  }

  function showErrors(errors) {
    clearErrors();
    const top = [];
    let first = null;
    for (const [name, items] of Object.entries(errors || {})) {
      const messages = (items || []).map((e) => (typeof e === "string" ? e : e.message)).filter(Boolean);
      const field = form.elements.namedItem(name);
      const el = field instanceof RadioNodeList ? field[0] : field;
      const holder = el ? el.closest("[data-field], fieldset, .mb-3") : null;
      if (!holder || name === "key") {
        top.push(...messages);
        continue;
      }
      holder.classList.add("sh-field-error", "sh-js-invalid");
      holder.appendChild(errorList(messages));
      first = first || holder;
    }
    if (top.length) {
      first = showTopError(top);
    } else if (first) {
      showTopError([form.dataset.msgInvalid || ""]);
    }
    syncNotes();
    if (first) {
      first.scrollIntoView({ block: "center" });
      const focusable = first.querySelector("input:not([type=hidden]), textarea, select");
      if (focusable) {
        focusable.focus({ preventScroll: true });
      }
    }
  }

  function setBusy(busy) {
    form.querySelectorAll('button[type="submit"], button:not([type])').forEach((b) => {
      b.disabled = busy;
    });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // --- Sending ---------------------------------------------------------------------------------

  function scheduleRetry() {
    if (retryTimer !== null) {
      return;
    }
    retryTimer = window.setTimeout(() => {
      retryTimer = null;
      retryDelay = Math.min(retryDelay * 2, 60000);
      send();
    }, retryDelay);
  }

  function wentOffline() {
    pending = true;
    show(offlineNote, true);
    save({ pending: true });
    if (navigator.onLine) {
      scheduleRetry(); // online but the server is out of reach (a weak network): try again later
    }
  }

  async function send() {
    if (sending) {
      return; // never two sends at once; a second click waits for the first
    }
    const copy = readCopy(storageKey()) || {};
    const action = chosenAction || copy.action || "submit";
    if (!navigator.onLine) {
      wentOffline();
      return;
    }
    sending = true;
    setBusy(true);
    const data = new FormData(form);
    data.set("action", action);
    if (keyInput) {
      data.set("key", form.dataset.key);
    }
    let response;
    try {
      response = await fetch(form.getAttribute("action") || window.location.href, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch (err) {
      sending = false;
      setBusy(false);
      wentOffline();
      return;
    }
    let answer = null;
    if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
      try {
        answer = await response.json();
      } catch (err) {
        answer = null;
      }
    }
    sending = false;
    setBusy(false);
    pending = false;
    if (answer && answer.ok && answer.url) {
      forget();
      show(offlineNote, false);
      window.location.assign(answer.url);
      return;
    }
    show(offlineNote, false);
    retryDelay = 5000;
    save({ pending: false });
    if (answer && response.status === 400) {
      showErrors(answer.errors);
    } else if (response.status >= 500) {
      clearErrors();
      showTopError([form.dataset.msgServer || ""]).scrollIntoView({ block: "center" });
    } else {
      // A login page after a redirect (session ended), 403 (CSRF) or 404: the copy stays here.
      clearErrors();
      showTopError([form.dataset.msgLogin || ""]).scrollIntoView({ block: "center" });
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.submitter;
    const action = button && button.name === "action" ? button.value : "submit";
    chosenAction = action;
    pending = true;
    save({ action, pending: true });
    send();
  });

  form.addEventListener("input", () => save({}));
  form.addEventListener("change", () => save({}));

  window.addEventListener("online", () => {
    const copy = readCopy(storageKey());
    if (pending || (copy && copy.pending)) {
      if (retryTimer !== null) {
        window.clearTimeout(retryTimer);
        retryTimer = null;
      }
      retryDelay = 5000;
      send();
    }
  });
  window.addEventListener("offline", () => {
    const copy = readCopy(storageKey());
    if (pending || (copy && copy.pending)) {
      show(offlineNote, true);
    }
  });

  const discard = document.querySelector("[data-visit-discard]");
  if (discard) {
    discard.addEventListener("click", () => {
      forget();
      window.location.reload();
    });
  }

  // --- On load: bring back what was typed, and send it if it was on its way ---------------------

  const saved = newestCopy();
  if (saved && saved.fields) {
    adoptKey(saved.key);
    restore(saved.fields);
    show(restoredNote, true);
    if (saved.pending) {
      show(offlineNote, true);
      send();
    }
  }
})();
