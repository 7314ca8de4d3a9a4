// The projects: each with its production and preview status, URLs and resource use; and the
// form that creates one from a manifest.
'use strict';

B.envSummary = function (env, label) {
  const h = B.h;
  if (!env) return h('div.muted', label + ': —');
  const u = env.usage;
  return h('div.env', {'data-env': label},
    h('div.row', h('strong', label), B.badge(env.status), env.current ? h('code', env.current) : ''),
    h('dl.kv',
      h('dt', 'URL'), h('dd', B.link(env.public_url || env.url)),
      h('dt', 'Port'), h('dd', env.port || '—'),
      env.running ? [h('dt', 'Deploying'), h('dd', h('a', {href: '#/d/' + env.running}, env.running),
                                                 env.queued ? ' (+' + env.queued + ' queued)' : '')] : null,
      env.reason ? [h('dt', 'Reason'), h('dd', env.reason)] : null,
      h('dt', 'Resources'), h('dd', u ? B.fmtBytes(u.memory_bytes) + ' · ' + u.cpu_seconds.toFixed(1) + ' s CPU · ' +
        u.processes + ' proc' + (u.limits && u.limits.memory_mb ? ' (limit ' + u.limits.memory_mb + ' MiB)' : '') : '—')));
};

// The list comes a page at a time (GET /api/projects?limit&cursor); "More" follows next_cursor.
B.views.projects = async function (main) {
  const h = B.h;
  const grid = h('div.grid', {id: 'projects'});
  const more = h('button', {id: 'more-projects', hidden: true}, 'More projects');
  main.replaceChildren(h('div.row.spread', h('h1', 'Projects'), h('a.button', {href: '#/new'}, 'New project')), grid, more);
  let cursor = null;
  const loadPage = async () => {
    const page = await B.api('GET', '/api/projects?limit=100' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!page.projects.length && !grid.children.length)
      grid.append(h('div.card.muted', 'No projects yet. Create one, or use the one-shot deploy.'));
    await Promise.all(page.projects.map(async (p) => {
      const card = h('div.card.project', {'data-project': p.name},
        h('div.row.spread', h('h2', h('a', {href: '#/p/' + p.name}, p.name)), p.status ? B.badge(p.status) : ''));
      grid.append(card);
      try {
        const full = await B.api('GET', '/api/projects/' + encodeURIComponent(p.name));
        const envs = full.environments || {};
        card.append(B.envSummary(envs.production, 'production'), B.envSummary(envs.preview, 'preview'));
      } catch (e) {
        card.append(h('div.muted', e.message));
      }
    }));
  };
  more.addEventListener('click', B.act(more, loadPage));
  await loadPage();
};

B.views.new = async function (main) {
  const h = B.h;
  const example = {name: 'my-app', runtime: 'process', source: {path: '/srv/my-app'},
    preview: {command: ['python3', 'server.py'], health: {path: '/'}},
    production: {command: ['python3', 'server.py'], health: {path: '/'}}, env: {}, secrets: {}};
  const text = h('textarea', {id: 'manifest', rows: 18, spellcheck: 'false'});
  text.value = JSON.stringify(example, null, 2);
  const create = h('button.primary', {id: 'create'}, 'Create project');
  create.addEventListener('click', B.act(create, async () => {
    let m;
    try { m = JSON.parse(text.value); } catch (e) { throw new Error('The manifest is not valid JSON: ' + e.message); }
    const p = await B.api('POST', '/api/projects', m);
    B.toast('Created ' + p.name);
    location.hash = '#/p/' + p.name;
  }));
  main.replaceChildren(h('h1', 'New project'),
    h('div.card', h('p.muted', 'The project manifest (JSON): where the source is, how to build, run and health-check it.'),
      text, h('div.row', {style: 'margin-top:10px'}, create)));
};
