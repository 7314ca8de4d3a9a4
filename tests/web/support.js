// What the browser test needs around the browser: a real `berth serve` on a free port with its
// own data dir, a deploy template, copies of the sample site (tests/apps/site), bounded waits,
// and the clean-up of everything it started.
'use strict';
const assert = require('node:assert/strict');
const {spawn} = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const binary = process.env.BERTH_BINARY;
const apps = process.env.BERTH_TEST_APPS;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitFor(what, fn, ms = 20000) {
  const until = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch (e) { /* not yet */ }
    if (Date.now() > until) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function copySite(dir, version) {
  fs.mkdirSync(dir, {recursive: true});
  for (const f of ['build.py', 'server.py']) fs.copyFileSync(path.join(apps, 'site', f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'VERSION'), version + '\n');
  fs.chmodSync(dir, 0o755);
  return dir;
}

function siteManifest(src) {
  return {source: {path: src},
    preview: {command: ['python3', 'server.py'], health: {path: '/health', timeout_s: 10, interval_ms: 50}},
    build: {command: ['python3', 'build.py'], artifacts: ['dist']},
    production: {command: ['python3', 'dist/server.py'],
                 health: {path: '/health', timeout_s: 10, interval_ms: 100, min_healthy_s: 0}, keep: 5},
    env: {SITE_ENV: 'web-test'}};
}

// The apps berth started outlive it by design: end those whose folder is in ours (by pid).
async function killProcessesIn(dir) {
  for (let round = 0; round < 10; ++round) {
    const left = [];
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cwd = '';
      try { cwd = fs.readlinkSync('/proc/' + pid + '/cwd'); } catch (e) { continue; }
      if (cwd === dir || cwd.startsWith(dir + '/')) left.push(Number(pid));
    }
    if (!left.length) return;
    for (const pid of left) try { process.kill(pid, 'SIGKILL'); } catch (e) { /* gone */ }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Starts berth in a fresh temp dir with a deploy template (the site, release "stack"); answers
// {tmp, base, token, api(path, method), stop(printLog)} once /health answers.
async function startBerth() {
  assert.ok(binary && apps, 'BERTH_BINARY and BERTH_TEST_APPS must be set');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-web-'));
  fs.chmodSync(tmp, 0o755);  // apps run under their own uid and must reach their sources
  const template = path.join(tmp, 'template.json');
  fs.writeFileSync(template, JSON.stringify(siteManifest(copySite(path.join(tmp, 'stack'), 'stack'))));
  const token = crypto.randomBytes(24).toString('hex');
  const port = await freePort();
  // Port windows picked at random, as the C++ deploy tests do, so parallel servers do not collide.
  const prod = 8000 + crypto.randomInt(9) * 200, preview = 4000 + crypto.randomInt(19) * 200;
  const log = fs.openSync(path.join(tmp, 'server.log'), 'a');
  const berth = spawn(binary, ['serve', '--listen', '127.0.0.1:' + port, '--data', path.join(tmp, 'data'),
    '--deploy-template', template, '--stop-grace-ms', '500', '--drain-ms', '300',
    '--production-ports', prod + '-' + (prod + 199), '--preview-ports', preview + '-' + (preview + 199)],
    {env: Object.assign({}, process.env, {BERTH_TOKEN: token}), stdio: ['ignore', log, log]});
  const base = 'http://127.0.0.1:' + port;
  const stop = async (printLog) => {
    const exited = new Promise((r) => { if (berth.exitCode !== null) r(); else berth.on('exit', r); });
    berth.kill('SIGKILL');
    await exited;
    await killProcessesIn(tmp);
    if (printLog) console.error('server log:\n' + fs.readFileSync(path.join(tmp, 'server.log'), 'utf8').slice(-4000));
    if (!process.env.BERTH_IT_KEEP) fs.rmSync(tmp, {recursive: true, force: true});
  };
  try {
    await waitFor('berth to answer /health', async () => (await fetch(base + '/health')).ok);
  } catch (e) {
    await stop(true);
    throw e;
  }
  // What the server says, asked with the bearer token (the test's own check, not the page's).
  const api = async (p, method = 'GET') => {
    const r = await fetch(base + p, {method, headers: {Authorization: 'Bearer ' + token}});
    assert.equal(r.status, 200, method + ' ' + p);
    return r.json();
  };
  return {tmp, base, token, api, stop};
}

module.exports = {startBerth, copySite, siteManifest, waitFor};
