// Opening and closing the dashboard's Bootstrap modals at any moment. Bootstrap 5 ignores `show()` while
// a modal is fading out and `hide()` while it is fading in (both about 300 ms). A quick second action
// hits the first; an action that finishes inside the fade-in hits the second (a bulk delete of a few
// files answers in well under 300 ms when the confirm button is clicked as soon as it appears), and the
// dialog stayed open over a finished action. These wait for the fade in progress instead.
import { bs } from './page.js';

/** 'opening' | 'closing' | 'still', from Bootstrap's own events on each modal element. */
const phase = new WeakMap();

function watch(el) {
  if (phase.has(el)) return;
  phase.set(el, 'still');
  // A listener of show/hide may cancel it (the delete dialog does without a row); Bootstrap reads
  // defaultPrevented right after dispatch, so a microtask sees the outcome. Without a fade, Bootstrap
  // fires shown/hidden inside show()/hide(), which has set the phase back to 'still' already.
  const moving = (name) => (event) => {
    phase.set(el, name);
    queueMicrotask(() => {
      if (event.defaultPrevented && phase.get(el) === name) phase.set(el, 'still');
    });
  };
  el.addEventListener('show.bs.modal', moving('opening'));
  el.addEventListener('hide.bs.modal', moving('closing'));
  el.addEventListener('shown.bs.modal', () => phase.set(el, 'still'));
  el.addEventListener('hidden.bs.modal', () => phase.set(el, 'still'));
}

/** Watches every modal of the page, so one opened by a data-bs-toggle button is known too. */
export function watchModals() {
  for (const el of document.querySelectorAll('.modal')) watch(el);
}

/** Opens the modal, after it has finished closing if it is closing right now. */
export function showModal(el) {
  watch(el);
  const modal = bs.Modal.getOrCreateInstance(el);
  if (phase.get(el) === 'closing') el.addEventListener('hidden.bs.modal', () => modal.show(), { once: true });
  else modal.show();
}

/** Closes the modal, after it has finished opening if it is opening right now. */
export function hideModal(el) {
  watch(el);
  const modal = bs.Modal.getOrCreateInstance(el);
  if (phase.get(el) === 'opening') el.addEventListener('shown.bs.modal', () => modal.hide(), { once: true });
  else modal.hide();
}
