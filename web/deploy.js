// One deployment followed live: its phases advancing (SSE progress events) and its build log
// beside them; during a canary, its step and both releases' figures, with Promote and Abort.
// Used by the deployment page and the one-shot page.
'use strict';
B.PHASES = ['queued', 'preparing', 'building', 'packaging', 'starting', 'health_checking', 'switching', 'draining',
            'completed'];

B.deployView = function (id, onDone) {
  const h = B.h;
  const phases = h('ul.phases');
  const items = {};
  const addPhase = (p) => {
    if (items[p]) return items[p];
    const li = h('li', {'data-phase': p, 'data-state': 'pending'}, p.replace('_', ' '));
    // Phases not every deployment has go where they belong.
    const before = p === 'canary' ? items.switching : items.completed;
    if (before) phases.insertBefore(li, before); else phases.append(li);
    items[p] = li;
    return li;
  };
  B.PHASES.forEach(addPhase);
  const status = h('span', {id: 'deploy-status'}, B.badge('queued'));
  const bar = h('div', {style: 'width:0%'});
  const message = h('div.muted', {id: 'deploy-message'}, '');
  const log = h('pre.log', {id: 'build-log'});
  const result = h('div', {id: 'deploy-result'});
  const cancel = h('button.danger', {id: 'cancel'}, 'Cancel');
  const canary = B.canaryPanel(id);
  let current = null, finished = false;

  cancel.addEventListener('click', B.act(cancel, async () => {
    await B.api('POST', '/api/deployments/' + encodeURIComponent(id) + '/cancel');
    B.toast('Cancel requested');
  }));

  // The phases before the new one are behind us: done if they ran, skipped if not.
  const advance = (p) => {
    if (!p) return;
    const li = addPhase(p);
    for (const el of phases.children) {
      if (el === li) break;
      if (el.dataset.state === 'active') el.dataset.state = 'done';
      else if (el.dataset.state === 'pending') el.dataset.state = 'skipped';
    }
    li.dataset.state = p === 'completed' ? 'done' : 'active';
    current = p;
  };
  const setStatus = (s) => status.replaceChildren(B.badge(s));
  const finish = (ok, data) => {
    if (finished) return;
    finished = true;
    cancel.hidden = true;
    canary.done();
    for (const el of phases.children) if (el.dataset.state === 'pending') el.dataset.state = 'skipped';
    // A phase may have passed between the first look and the stream's first state: the
    // record says which ran.
    B.api('GET', '/api/deployments/' + encodeURIComponent(id)).then((d) => {
      setStatus(d.status);
      for (const span of d.phases || []) {
        const li = items[span.phase];
        if (li && li.dataset.state === 'skipped') li.dataset.state = 'done';
      }
    }, () => {});
    if (ok) {
      advance('completed');
      bar.style.width = '100%';
      setStatus(data.status || 'completed');
      result.className = 'result ok';
      result.replaceChildren('Deployed', data.hash ? h('span', ' release ', h('code', data.hash)) : '',
                             data.url ? h('span', ' — ', B.link(data.url)) : '');
    } else {
      if (data.phase && items[data.phase]) items[data.phase].dataset.state = 'failed';
      else if (current) items[current].dataset.state = 'failed';
      setStatus(data.code === 'cancelled' ? 'cancelled' : 'failed');
      result.className = 'result bad';
      result.replaceChildren(h('strong', 'Failed' + (data.phase ? ' in ' + data.phase : '')), ': ',
                             data.message || '', data.code ? h('span.muted', ' (' + data.code + ')') : '');
    }
    if (onDone) onDone(ok, data);
  };

  (async () => {
    try {  // the phases already passed (the stream starts from the current state)
      const d = await B.api('GET', '/api/deployments/' + encodeURIComponent(id));
      for (const span of d.phases || []) advance(span.phase);
    } catch (e) { B.toast(e.message, true); }
    B.stream('/api/deployments/' + encodeURIComponent(id) + '/events', {
      // Each connection (a reconnect too) starts with the log so far: no line twice.
      open: () => log.replaceChildren(),
      progress: (p) => {
        advance(p.phase);
        setStatus(p.status);
        if (typeof p.progress === 'number') bar.style.width = p.progress + '%';
        message.textContent = p.message || '';
        canary.show(p.phase === 'canary' ? (p.canary || (p.resources || {}).canary) : null);
      },
      log: (l) => {
        const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(l.line + '\n');
        if (stick) log.scrollTop = log.scrollHeight;
      },
      complete: (d, es) => { es.close(); finish(true, d); },
      error: (d, es) => { es.close(); finish(false, d); },
      broken: (es) => { if (finished) es.close(); },
    });
  })();

  return h('div.cols',
    h('div.card', h('div.row.spread', h('h2', 'Deployment ', h('code', id)), status), h('div.bar', bar), message, phases,
      canary.el, result, h('div.row', cancel)),
    h('div.card', h('h2', 'Build log'), log));
};

// The canary's step and the two sides' figures (live), with a person's Promote and Abort.
B.canaryPanel = function (id) {
  const h = B.h;
  const step = h('div', {id: 'canary-step'});
  const rows = h('tbody');
  const reason = h('div.muted', {id: 'canary-reason'});
  const promote = h('button', {id: 'promote'}, 'Promote now');
  const abort = h('button.danger', {id: 'abort'}, 'Abort');
  const el = h('div.canary', {id: 'canary', hidden: true}, h('h3', 'Canary'), step,
    h('table', h('thead', h('tr', h('th', ''), h('th', 'requests'), h('th', 'errors'), h('th', 'error rate'),
      h('th', 'p50'), h('th', 'p99'))), rows), reason, h('div.row', promote, abort));
  const decide = (verb) => B.act(verb === 'promote' ? promote : abort, async () => {
    await B.api('POST', '/api/deployments/' + encodeURIComponent(id) + '/' + verb);
    B.toast(verb === 'promote' ? 'Promoted: the rest of the traffic moves now' : 'Aborted: every request goes back');
  });
  promote.addEventListener('click', decide('promote'));
  abort.addEventListener('click', decide('abort'));
  const ms = (v) => (typeof v === 'number' && v >= 0 ? v + ' ms' : '-');
  const row = (name, f) => h('tr', {'data-side': name}, h('th', name), h('td', {'data-figure': 'requests'}, String(f.requests || 0)),
    h('td', String(f.errors || 0)), h('td', ((f.error_rate || 0) * 100).toFixed(1) + ' %'), h('td', ms(f.p50_ms)),
    h('td', ms(f.p99_ms)));
  return {
    el,
    show(c) {
      if (!c) return;
      el.hidden = false;
      step.textContent = 'Step ' + c.step + ' of ' + c.steps + ': ' + c.percent + ' % of requests to the candidate (' +
        c.verdict + ')';
      rows.replaceChildren(row('candidate', c.candidate || {}), row('serving', c.serving || {}));
      reason.textContent = c.reason || '';
    },
    done() { promote.hidden = true; abort.hidden = true; },
  };
};
