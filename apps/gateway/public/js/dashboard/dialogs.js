// Two small dialogs the folder and bulk sections share: ask for a name, and confirm a destructive step.
// Each resolves through the caller's action, which may throw to show its error inside the dialog.
import { hideModal, showModal } from './modals.js';
import { setOptionalText, setText } from './page.js';

const $ = (id) => document.getElementById(id);

/**
 * Opens the name dialog; `save(name)` runs on submit and closes it when it resolves, or shows the error
 * message it throws (a 409 "already there", a 400 refused name) and stays open.
 */
export function askName({ title, label, value = '', save }) {
  const modalEl = $('name-modal');
  const form = $('name-form');
  const input = $('name-input');
  const submit = $('name-submit');
  modalEl.querySelector('#name-modal-title').textContent = title;
  submit.textContent = label;
  input.value = value;
  setOptionalText(modalEl, 'error', '');
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      await save(input.value);
      hideModal(modalEl);
    } catch (error) {
      setOptionalText(modalEl, 'error', error.message);
    } finally {
      submit.disabled = false;
    }
  };
  modalEl.addEventListener('shown.bs.modal', () => input.select(), { once: true });
  showModal(modalEl);
}

/** Opens the confirmation dialog; `run()` runs on confirm (its thrown message is shown in the dialog). */
export function confirmAction({ title, text, label, run }) {
  const modalEl = $('confirm-modal');
  const ok = $('confirm-ok');
  modalEl.querySelector('#confirm-modal-title').textContent = title;
  setText(modalEl, 'text', text);
  setOptionalText(modalEl, 'error', '');
  ok.textContent = label;
  ok.disabled = false;
  ok.onclick = async () => {
    ok.disabled = true;
    try {
      await run();
      hideModal(modalEl);
    } catch (error) {
      setOptionalText(modalEl, 'error', error.message);
      ok.disabled = false;
    }
  };
  showModal(modalEl);
}
