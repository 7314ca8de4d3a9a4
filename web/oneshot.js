// The portal's one-shot page: a name checked as it is typed, one button, the phases until the
// URL appears. The server deploys it from its --deploy-template.
'use strict';

B.views.oneshot = async function (main) {
  const h = B.h;
  const name = h('input', {id: 'oneshot-name', placeholder: 'my-stack', autocomplete: 'off', spellcheck: 'false',
                           'aria-label': 'name'});
  const check = h('div.check', {id: 'oneshot-check'}, 'Lowercase letters, digits and dashes; 3 to 63 characters.');
  const go = h('button.primary', {id: 'oneshot-deploy', disabled: true}, 'Deploy');
  const below = h('div', {id: 'oneshot-progress'});
  const url = h('div', {id: 'oneshot-url'});
  let asked = 0, timer = null;

  const verdict = (ok, text) => {
    check.className = 'check ' + (ok ? 'ok' : 'bad');
    check.textContent = text;
    go.disabled = !ok;
  };
  name.addEventListener('input', () => {
    clearTimeout(timer);
    go.disabled = true;
    const n = name.value;
    if (!n) return verdict(false, 'Type a name');
    timer = setTimeout(async () => {
      const mine = ++asked;
      let r;
      try {
        r = await B.api('GET', '/api/check/' + encodeURIComponent(n));
      } catch (e) {
        r = {valid: false, available: false, reason: e.code === 'not_found' ? 'name is not valid' : e.message};
      }
      if (mine !== asked || n !== name.value) return;  // an older answer
      if (r.valid && r.available) verdict(true, '✓ ' + n + ' is available');
      else verdict(false, '✗ ' + (r.reason || 'not available'));
    }, 150);
  });
  go.addEventListener('click', B.act(go, async () => {
    const d = await B.api('POST', '/api/deploy', {name: name.value});
    name.disabled = true;
    below.replaceChildren(B.deployView(d.id, (ok, end) => {
      if (!ok) return;
      // The public URL (<name>.<domain suffix>) the deploy answered; the port on this host too.
      url.replaceChildren(h('div.card.result.ok', h('h2', name.value + ' is live'), h('p', B.link(d.url || end.url)),
        end.url && end.url !== d.url ? h('p.muted', 'On this host: ', B.link(end.url)) : ''));
    }));
    go.hidden = true;
  }));
  main.replaceChildren(h('h1', 'One-shot deploy'),
    h('div.card.oneshot', h('p.muted', 'Pick a name: berth creates the project from its template and deploys it.'),
      h('div.row', name, go), check),
    url, below);
};
