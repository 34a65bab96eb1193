// Report pages: live countdowns to each open deadline, and a report form that is sent once.
(() => {
  const words = document.getElementById("sh-countdown-words");
  const fill = (template, values) => template.replace(/\{(\w)\}/g, (_m, k) => String(values[k] ?? ""));
  const span = (seconds) => {
    const minutes = Math.floor(Math.abs(seconds) / 60);
    const d = Math.floor(minutes / 1440);
    const h = Math.floor((minutes % 1440) / 60);
    const m = minutes % 60;
    if (d) return fill(words.dataset.dh, { d, h });
    if (h) return fill(words.dataset.hm, { h, m });
    return fill(words.dataset.m, { m });
  };
  const tick = () => {
    const now = Date.now();
    document.querySelectorAll("[data-due]").forEach((el) => {
      const left = (Date.parse(el.dataset.due) - now) / 1000;
      el.textContent = fill(left < 0 ? words.dataset.over : words.dataset.left, { t: span(left) });
      if (left < 0) {
        el.classList.remove("text-bg-light", "text-bg-warning", "border");
        el.classList.add("text-bg-danger");
      }
    });
  };
  if (words) {
    tick();
    window.setInterval(tick, 15000);
  }
  // The form's key makes a second submission harmless; this only spares a second wait.
  const form = document.querySelector("form[data-submit-once]");
  if (form) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      if (button) {
        window.setTimeout(() => {
          button.disabled = true;
          button.textContent = form.dataset.submitOnce;
        }, 0);
      }
    });
  }
})();
