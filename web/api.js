// The API from the page: the session cookie goes with every request by itself; state-changing
// calls add the session's CSRF token. Nothing is kept in localStorage.
'use strict';
const B = {csrf: null, views: {}};

// Element builder: h('div.card', {onclick}, child, 'text', ...).
B.h = function (spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node)) { children.unshift(attrs); attrs = null; }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'style') el.style.cssText = v;  // through the CSSOM: the CSP refuses style attributes
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
};

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

B.api = async function (method, path, body) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD' && B.csrf) headers['X-CSRF-Token'] = B.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {method, headers, credentials: 'same-origin', cache: 'no-store',
                                 body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = (data && data.error) || {code: 'http_' + res.status, message: res.statusText};
    if (res.status === 401 && path !== '/api/session') B.signedOut();
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
};

B.signIn = async function (token) {
  const s = await B.api('POST', '/api/session', {token});
  B.csrf = s.csrf;
};

// The CSRF token of the cookie this browser already has (a reload); false when signed out.
B.resume = async function () {
  try {
    B.csrf = (await B.api('GET', '/api/session')).csrf;
    return true;
  } catch (e) {
    return false;
  }
};

B.toast = function (text, bad) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = bad ? 'bad' : '';
  t.hidden = false;
  clearTimeout(B.toastTimer);
  B.toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
};

// Runs an action from a button: disabled while it runs, errors shown.
B.act = function (button, fn) {
  return async () => {
    button.disabled = true;
    try { await fn(); } catch (e) { B.toast(e.message, true); button.disabled = false; }
  };
};

// EventSources open on the current view; closed when the view changes.
B.streams = [];
B.stream = function (url, handlers) {
  const es = new EventSource(url, {withCredentials: true});
  for (const [name, fn] of Object.entries(handlers)) {
    // The server's own `error` event has data; the browser's (connection trouble) has none.
    if (name === 'open') { es.addEventListener('open', () => fn(null, es)); continue; }
    es.addEventListener(name, (e) => {
      if (name === 'error' && !e.data) return handlers.broken && handlers.broken(es);
      fn(e.data ? JSON.parse(e.data) : null, es);
    });
  }
  if (!handlers.error && handlers.broken) es.addEventListener('error', () => handlers.broken(es));
  B.streams.push(es);
  return es;
};
B.closeStreams = function () {
  for (const es of B.streams) es.close();
  B.streams = [];
};

B.fmtBytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + ' GiB' : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB'
  : (n / 1024).toFixed(0) + ' KiB';
B.fmtTime = (iso) => iso ? new Date(iso).toLocaleString() : '—';
B.badge = (status) => B.h('span.badge.' + String(status || 'unknown').replace(/[^a-z_]/g, ''), status || 'unknown');
B.link = (url) => url ? B.h('a', {href: url, target: '_blank', rel: 'noopener'}, url) : B.h('span.muted', '—');
