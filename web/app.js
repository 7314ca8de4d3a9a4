// Boot and routing: the sign-in (the token is exchanged once for an HttpOnly session cookie
// and then forgotten), and the hash routes of the views.
'use strict';

B.routes = [
  [/^#?\/?$/, 'projects', 'projects'],
  [/^#\/new$/, 'new', 'new'],
  [/^#\/oneshot$/, 'oneshot', 'oneshot'],
  [/^#\/p\/([a-z0-9-]+)$/, 'project', 'projects'],
  [/^#\/d\/([a-z0-9.-]+)$/, 'deployment', 'projects'],
];

B.route = async function () {
  B.closeStreams();
  const main = document.getElementById('app');
  if (!B.csrf) return B.showSignIn(main);
  document.getElementById('nav').hidden = false;
  for (const [re, view, nav] of B.routes) {
    const m = location.hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('on', a.dataset.nav === nav);
    try {
      await B.views[view](main, ...m.slice(1));
    } catch (e) {
      if (B.csrf) main.replaceChildren(B.h('div.card.result.bad', {id: 'view-error'}, e.message));
    }
    return;
  }
  main.replaceChildren(B.h('div.card', 'Nothing here. ', B.h('a', {href: '#/'}, 'Back to the projects')));
};

B.showSignIn = function (main) {
  const h = B.h;
  document.getElementById('nav').hidden = true;
  const token = h('input', {id: 'token', type: 'password', autocomplete: 'current-password', 'aria-label': 'API token'});
  const error = h('div.check.bad', {id: 'signin-error'});
  const form = h('form.card.signin', h('h1', 'Sign in to berth'),
    h('label', {for: 'token'}, 'API token'), token,
    h('p.muted', 'The token given to berth (--token or BERTH_TOKEN), else the one in <data>/token. ' +
      'It is exchanged for a session cookie and not kept by this page.'),
    h('button.primary', {type: 'submit', id: 'sign-in'}, 'Sign in'), error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await B.signIn(token.value);
      token.value = '';
      B.route();
    } catch (err) {
      error.textContent = err.status === 401 ? 'That token is not valid.' : err.message;
    }
  });
  main.replaceChildren(form);
  token.focus();
};

B.signedOut = function () {
  B.csrf = null;
  B.route();
};

document.addEventListener('DOMContentLoaded', async () => {
  document.getElementById('sign-out').addEventListener('click', async () => {
    try { await B.api('DELETE', '/api/session'); } catch (e) { /* signed out either way */ }
    B.signedOut();
  });
  window.addEventListener('hashchange', B.route);
  await B.resume();
  B.route();
});
