// Shouhu: the little page behaviour there is (no inline scripts: the CSP forbids them).
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit")) {
    el.form.requestSubmit();
  }
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
  if (event.target.closest("[data-print]")) {
    window.print();
  }
  const add = event.target.closest("[data-add-form]");
  if (add) {
    // Clone the empty form of a Django formset and bump TOTAL_FORMS.
    const prefix = add.getAttribute("data-add-form");
    const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
    const template = document.getElementById(`${prefix}-empty`);
    const target = document.getElementById(`${prefix}-forms`);
    if (total && template && target) {
      const index = parseInt(total.value, 10);
      const html = template.innerHTML.replace(/__prefix__/g, String(index));
      target.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
    }
  }
});
// Logging out clears what the visit form kept in this browser (child data on a shared phone);
// when some of it was never sent, ask first.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-logout")) {
    return;
  }
  let keys = [];
  try {
    keys = Object.keys(window.localStorage).filter((k) => k.startsWith("shouhu.visit."));
  } catch (e) {
    return;
  }
  if (keys.length && !window.confirm(form.getAttribute("data-logout"))) {
    event.preventDefault();
    return;
  }
  keys.forEach((k) => window.localStorage.removeItem(k));
});
