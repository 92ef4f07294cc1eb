// Passkeys (WebAuthn) on the security, second-factor and enrolment pages, with the locally served
// @simplewebauthn/browser bundle (window.SimpleWebAuthnBrowser). Each ceremony asks the server for
// options (a fresh challenge bound to this session), lets the browser talk to the authenticator, and
// sends the answer back as JSON with the page's CSRF token.
(() => {
  const webauthn = window.SimpleWebAuthnBrowser;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

  async function post(url, body) {
    const res = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body ?? {}),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.message || `The server answered ${res.status}.`);
    return data;
  }

  /** What went wrong, in words for the user (the browser's own errors are terse). */
  function explain(error) {
    if (error?.name === 'NotAllowedError')
      return 'The passkey request was cancelled or timed out. Try again.';
    if (error?.name === 'InvalidStateError') return 'This passkey is already registered to your account.';
    return error?.message || 'The passkey did not work. Try again.';
  }

  function showError(root, message) {
    const box = root.querySelector('[data-passkey-error]');
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }

  function unsupported(root) {
    if (webauthn?.browserSupportsWebAuthn()) return false;
    showError(root, 'This browser cannot use passkeys.');
    for (const button of root.querySelectorAll('button')) button.disabled = true;
    return true;
  }

  /** Shows the recovery codes of a first factor (shown once), with a download link. */
  function showRecoveryCodes(codes, username, next) {
    const box = document.querySelector('[data-passkey-codes]');
    if (!box) return false;
    const list = box.querySelector('ul');
    for (const code of codes) {
      const item = document.createElement('li');
      item.dataset.testid = 'recovery-code';
      item.textContent = code;
      list.append(item);
    }
    const text = `TESS recovery codes${username ? ` for ${username}` : ''}\n\n${codes.join('\n')}\n`;
    box.querySelector('a[download]').href = `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`;
    box.querySelector('[data-passkey-continue]').href = next;
    box.hidden = false;
    box.scrollIntoView();
    return true;
  }

  for (const root of document.querySelectorAll('[data-passkey-sign-in]')) {
    if (unsupported(root)) continue;
    root.querySelector('button').addEventListener('click', async (event) => {
      event.target.disabled = true;
      try {
        const optionsJSON = await post(root.dataset.options);
        const response = await webauthn.startAuthentication({ optionsJSON });
        const done = await post(root.dataset.verify, { response });
        window.location.assign(done.redirect);
      } catch (error) {
        showError(root, explain(error));
        event.target.disabled = false;
      }
    });
  }

  for (const form of document.querySelectorAll('form[data-passkey-register]')) {
    if (unsupported(form)) continue;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const button = form.querySelector('button[type="submit"]');
      const name = form.querySelector('input[name="passkeyName"]').value.trim();
      if (!name) return showError(form, 'Name the passkey, for example the device it is on.');
      button.disabled = true;
      try {
        const optionsJSON = await post(form.dataset.options);
        const response = await webauthn.startRegistration({ optionsJSON });
        const done = await post(form.dataset.verify, { name, response });
        const next = done.redirect ?? form.dataset.done;
        if (
          done.recoveryCodes?.length &&
          showRecoveryCodes(done.recoveryCodes, form.dataset.username, next)
        ) {
          form.hidden = true;
          return;
        }
        window.location.assign(next);
      } catch (error) {
        showError(form, explain(error));
        button.disabled = false;
      }
    });
  }
})();
