// One project: its environments with stop/start, deploy, the release history with rollback,
// env and secrets (settings.js), and a log tail that follows.
'use strict';

B.views.project = async function (main, name) {
  const h = B.h;
  const base = '/api/projects/' + encodeURIComponent(name);
  const p = await B.api('GET', base);
  const envs = p.environments || {};
  const button = (label, cls, fn, id) => {
    const b = h('button' + (cls ? '.' + cls : ''), {id}, label);
    b.addEventListener('click', B.act(b, fn));
    return b;
  };
  const reload = () => B.route();  // closes this view's streams first
  const envAction = (path, label, enabled) => {
    const b = button(label, '', async () => {
      await B.api('POST', base + path);
      B.toast(name + ': ' + label.toLowerCase() + ' done');
      await reload();
    }, 'btn-' + path.replace(/\//g, '-').slice(1));
    b.disabled = !enabled;
    return b;
  };
  const prodUp = (envs.production || {}).status === 'running';
  const prodHasRelease = !!(envs.production || {}).current;
  const previewUp = ['running', 'starting'].includes((envs.preview || {}).status);

  const deploy = button('Deploy', 'primary', async () => {
    const d = await B.api('POST', base + '/deployments', {});
    location.hash = '#/d/' + d.id;
  }, 'deploy');

  const history = h('tbody');
  const releases = h('div.card', {id: 'releases'}, h('h2', 'Releases'),
    h('table', h('thead', h('tr', h('th', 'Release'), h('th', 'Built'), h('th', 'Deployed'), h('th', 'State'), h('th', ''))),
      history));
  try {
    const hist = await B.api('GET', base + '/production/history');
    if (!hist.releases.length) history.append(h('tr', h('td.muted', {colspan: 5}, 'No release yet: deploy one.')));
    for (const r of hist.releases) {
      const rollback = r.current ? '' : button('Roll back to this', '', async () => {
        const d = await B.api('POST', base + '/production/rollback', {hash: r.hash});
        location.hash = '#/d/' + d.id;
      });
      history.append(h('tr', {'data-release': r.hash},
        h('td', h('code', r.hash)), h('td', B.fmtTime(r.created)), h('td', B.fmtTime(r.deployed_at)),
        h('td', r.active ? B.badge('active') : r.current ? B.badge('current') : h('span.muted', 'kept')), h('td', rollback)));
    }
  } catch (e) {
    history.append(h('tr', h('td.muted', {colspan: 5}, e.message)));
  }

  main.replaceChildren(
    h('div.row.spread', h('h1', name), h('div.row', deploy)),
    h('div.cols',
      h('div.card', {id: 'production'}, B.envSummary(envs.production, 'production'),
        h('div.row', envAction('/production/stop', 'Stop', prodUp), envAction('/production/start', 'Start', prodHasRelease && !prodUp))),
      h('div.card', {id: 'preview'}, B.envSummary(envs.preview, 'preview'),
        h('div.row', envAction('/preview/start', 'Start', !previewUp), envAction('/preview/stop', 'Stop', previewUp),
          envAction('/preview/restart', 'Restart', previewUp)))),
    releases,
    B.settingsCard(name, p.manifest, reload),
    B.logTail(name));
};

// The environment's log: the last lines, then new ones as they are written (contract: logs route).
B.logTail = function (name) {
  const h = B.h;
  const out = h('pre.log.tail', {id: 'log-tail'});
  const env = h('select', {id: 'log-env'}, h('option', 'production'), h('option', 'preview'));
  const state = h('span.muted', {id: 'log-state'}, '');
  let es = null;
  const open = () => {
    if (es) es.close();
    out.replaceChildren();
    state.textContent = 'following';
    es = B.stream('/api/projects/' + encodeURIComponent(name) + '/logs?follow=1&tail=200&env=' + env.value, {
      log: (d) => {
        const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
        out.append(d.text);
        if (stick) out.scrollTop = out.scrollHeight;
      },
      gap: (d) => out.append(h('span.note', '… ' + d.lost + ' bytes no longer kept …\n')),
      end: (d, s) => { s.close(); state.textContent = 'end of log'; },
      // EventSource reconnects by itself with Last-Event-ID; closed means it gave up (e.g. 404).
      broken: (s) => { state.textContent = s.readyState === EventSource.CLOSED ? 'no log to follow' : 'reconnecting…'; },
    });
  };
  env.addEventListener('change', open);
  setTimeout(open, 0);
  return h('div.card', h('div.row.spread', h('h2', 'Logs'), h('div.row', state, env)), out);
};

B.views.deployment = async function (main, id) {
  const project = id.replace(/\.\d+$/, '');
  main.replaceChildren(B.h('div.row', B.h('a', {href: '#/p/' + project}, '← ' + project)), B.deployView(id));
};
