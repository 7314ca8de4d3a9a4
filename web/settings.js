// Env and secrets of a project, saved with PUT of its manifest. Secrets are write-only: the
// server shows them as ******** and keeps the stored value when ******** is sent back, so the
// page never sees one and an untouched secret stays as it is.
'use strict';
B.MASKED = '********';

B.settingsCard = function (name, manifest, reload) {
  const h = B.h;
  const envRows = h('div', {id: 'env-rows'});
  const secretRows = h('div', {id: 'secret-rows'});
  const row = (kind, key, value, known) => {
    const k = h('input.key', {placeholder: 'NAME', value: key, readonly: known ? true : null, 'aria-label': kind + ' name'});
    const v = kind === 'env'
      ? h('input', {placeholder: 'value', value, 'aria-label': 'value of ' + key})
      : h('input', {type: 'password', autocomplete: 'new-password', 'aria-label': 'value of ' + key,
                    placeholder: known ? 'set (hidden) — type to replace' : 'value'});
    const remove = h('button.danger', {title: 'Remove'}, '✕');
    const r = h('div.env-row', {'data-kind': kind}, k, v, remove);
    r.known = known;
    remove.addEventListener('click', () => r.remove());
    return r;
  };
  for (const [k, v] of Object.entries(manifest.env || {})) envRows.append(row('env', k, v, false));
  for (const k of Object.keys(manifest.secrets || {})) secretRows.append(row('secret', k, '', true));
  const addEnv = h('button', {id: 'add-env'}, '+ variable');
  addEnv.addEventListener('click', () => envRows.append(row('env', '', '', false)));
  const addSecret = h('button', {id: 'add-secret'}, '+ secret');
  addSecret.addEventListener('click', () => secretRows.append(row('secret', '', '', false)));

  const save = h('button.primary', {id: 'save-settings'}, 'Save env and secrets');
  save.addEventListener('click', B.act(save, async () => {
    const env = {}, secrets = {};
    for (const r of envRows.children) {
      const [k, v] = r.querySelectorAll('input');
      if (k.value.trim()) env[k.value.trim()] = v.value;
    }
    for (const r of secretRows.children) {
      const [k, v] = r.querySelectorAll('input');
      if (!k.value.trim()) continue;
      if (!v.value && !r.known) throw new Error('The new secret ' + k.value + ' needs a value');
      secrets[k.value.trim()] = v.value || B.MASKED;  // ******** keeps the stored value
    }
    await B.api('PUT', '/api/projects/' + encodeURIComponent(name), Object.assign({}, manifest, {env, secrets}));
    B.toast('Saved: the next deploy or preview start uses them');
    await reload();
  }));
  return h('div.card', {id: 'settings'}, h('h2', 'Environment and secrets'),
    h('div.cols',
      h('div', h('h3.muted', 'Variables'), envRows, addEnv),
      h('div', h('h3.muted', 'Secrets (write-only)'), secretRows, addSecret)),
    h('div.row', {style: 'margin-top:14px'}, save));
};
