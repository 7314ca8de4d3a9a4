// berth's dashboard in a real browser: headless Chromium (/usr/bin/chromium, driven by
// playwright-core) against a real `berth serve` started here with a real app (tests/apps/site).
// Goes: sign in (a wrong token first) → create a project → deploy → phases reach completed →
// a second release → rollback → log tail → stop/start → env and secrets → cancel → the one-shot
// page checks names as they are typed and deploys one until its URL appears; screenshots in
// $BERTH_SCREENSHOTS. Server and clean-up: support.js.
// Env: BERTH_BINARY, BERTH_TEST_APPS, BERTH_SCREENSHOTS. Run by ctest ("web: dashboard").
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const {chromium} = require('playwright-core');
const {startBerth, copySite, siteManifest, waitFor} = require('./support');

const shots = process.env.BERTH_SCREENSHOTS || path.join(process.cwd(), 'screenshots');
const chromiumPath = process.env.BERTH_CHROMIUM || '/usr/bin/chromium';
const UI_WAIT = 60000;  // a bound on waits for what the page shows (deploys run real builds)
const t0 = Date.now();
const step = (what) => console.log(((Date.now() - t0) / 1000).toFixed(1).padStart(6) + ' s  ' + what);

async function main() {
  fs.mkdirSync(shots, {recursive: true});
  const srv = await startBerth();
  const {base, token} = srv;
  const fetchApi = srv.api;
  const site = copySite(path.join(srv.tmp, 'site'), '1');
  let browser = null, ok = false;
  try {
    browser = await chromium.launch({executablePath: chromiumPath, headless: true, args: ['--no-sandbox']});
    const context = await browser.newContext({viewport: {width: 1280, height: 900}});
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // What the Content-Security-Policy refused (an inline script or style would be).
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) errors.push(m.text()); });
    const shot = async (name) => {
      await page.evaluate(() => { document.getElementById('toast').hidden = true; });
      return page.screenshot({path: path.join(shots, name + '.png'), fullPage: true});
    };
    const text = (sel) => page.locator(sel).innerText();

    step('sign in');
    // Sign in: a wrong token is refused and leaves no cookie; the right one gets an HttpOnly one.
    await page.goto(base + '/');
    await page.fill('#token', 'not-the-token-not-the-token');
    await page.click('#sign-in');
    await page.waitForSelector('#signin-error:has-text("not valid")', {timeout: UI_WAIT});
    assert.equal((await context.cookies()).length, 0, 'a wrong token must not set a cookie');
    assert.ok(!(await page.isVisible('#nav')), 'no navigation before signing in');
    await shot('signin');
    await page.fill('#token', token);
    await page.click('#sign-in');
    await page.waitForSelector('h1:has-text("Projects")', {timeout: UI_WAIT});
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].name, 'berth_session');
    assert.ok(cookies[0].httpOnly, 'the session cookie is HttpOnly');
    assert.equal(cookies[0].sameSite, 'Strict');
    assert.ok(!cookies[0].value.includes(token), 'the cookie does not carry the token');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing kept in localStorage');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read the cookie');
    // The cookie alone does not change anything: no CSRF header, 403.
    const forged = await page.evaluate(async () => {
      const r = await fetch('/api/projects', {method: 'POST', body: '{"name":"db-forged","source":{"path":"/tmp"}}',
                                             headers: {'Content-Type': 'application/json'}});
      return {status: r.status, body: await r.json()};
    });
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error.code, 'csrf');
    // A reload keeps the session (the cookie), and gets its CSRF token back.
    await page.reload();
    await page.waitForSelector('h1:has-text("Projects")', {timeout: UI_WAIT});

    step('create');
    // Create a project from its manifest.
    await page.click('a[href="#/new"]');
    await page.fill('#manifest', JSON.stringify(Object.assign({name: 'db-site'}, siteManifest(site)), null, 2));
    await page.click('#create');
    await page.waitForSelector('h1:has-text("db-site")', {timeout: UI_WAIT});
    assert.match(await text('#releases'), /No release yet/);

    step('deploy');
    // Deploy: the phases advance live until completed, with the build log beside them.
    await page.click('#deploy');
    await page.waitForSelector('li[data-phase="completed"][data-state="done"]', {timeout: UI_WAIT});
    for (const p of ['queued', 'building', 'starting', 'health_checking']) {
      assert.equal(await page.getAttribute(`li[data-phase="${p}"]`, 'data-state'), 'done', p + ' passed');
    }
    assert.match(await text('#deploy-status'), /completed/);
    assert.match(await text('#deploy-result'), /Deployed release [0-9a-f]{12}/);
    await waitFor('the build log', async () => /built dist\/ for release 1/.test(await text('#build-log')));
    await shot('deploy');
    const first = (await text('#deploy-result')).match(/[0-9a-f]{12}/)[0];

    step('second release');
    // A second release, then roll back to the first from the history.
    fs.writeFileSync(path.join(site, 'VERSION'), '2\n');
    await page.click('a:has-text("db-site")');
    await page.waitForSelector('#deploy', {timeout: UI_WAIT});
    await page.click('#deploy');
    await page.waitForSelector('li[data-phase="completed"][data-state="done"]', {timeout: UI_WAIT});
    const second = (await text('#deploy-result')).match(/[0-9a-f]{12}/)[0];
    assert.notEqual(second, first);
    await page.click('a:has-text("db-site")');
    await page.waitForSelector(`tr[data-release="${first}"] button`, {timeout: UI_WAIT});
    assert.match(await text(`tr[data-release="${second}"]`), /active/);
    step('rollback');
    await page.click(`tr[data-release="${first}"] button:has-text("Roll back")`);
    await page.waitForSelector('li[data-phase="completed"][data-state="done"]', {timeout: UI_WAIT});
    assert.match(await text('#deploy-result'), new RegExp('Deployed release ' + first));
    await page.click('a:has-text("db-site")');
    await page.waitForSelector(`tr[data-release="${first}"]`, {timeout: UI_WAIT});
    assert.match(await text(`tr[data-release="${first}"]`), /active/);
    assert.match(await text('#production'), /running/);
    assert.match(await text('#production'), new RegExp(first));
    // The log tail: the release's lines so far, then new ones as they are written (here: the
    // release restarted behind the page's back, through the API).
    const startups = async () => ((await text('#log-tail')).match(new RegExp('release ' + first + ' mode normal', 'g')) || []).length;
    await waitFor('the release log in the tail', async () => (await startups()) >= 2, UI_WAIT);
    const before = await startups();
    await fetchApi('/api/projects/db-site/production/stop', 'POST');
    await fetchApi('/api/projects/db-site/production/start', 'POST');
    await waitFor('a new line in the followed log', async () => (await startups()) === before + 1, UI_WAIT);
    assert.equal(await text('#log-state'), 'following');
    await page.reload();
    await page.waitForSelector('#production .badge.running', {timeout: UI_WAIT});
    await waitFor('the tail after a reload', async () => (await startups()) === before + 1, UI_WAIT);
    await shot('project');

    step('stop and start');
    await page.click('#btn-production-stop');
    await page.waitForSelector('#production .badge.stopped', {timeout: UI_WAIT});
    assert.equal((await fetchApi('/api/projects/db-site/production')).status, 'stopped');
    await page.click('#btn-production-start');
    await page.waitForSelector('#production .badge.running', {timeout: UI_WAIT});
    assert.equal((await fetchApi('/api/projects/db-site/production')).status, 'running');

    step('env and secrets');
    const secret = 'db-' + crypto.randomBytes(12).toString('hex');
    const sha = (v) => crypto.createHash('sha256').update(v).digest('hex');
    await page.click('#add-env');
    await page.locator('#env-rows .env-row').last().locator('input').nth(0).fill('DB_VAR');
    await page.locator('#env-rows .env-row').last().locator('input').nth(1).fill('plain value');
    await page.click('#add-secret');
    await page.locator('#secret-rows .env-row').last().locator('input').nth(0).fill('DB_SECRET');
    await page.locator('#secret-rows .env-row').last().locator('input').nth(1).fill(secret);
    await page.click('#save-settings');
    await page.waitForSelector('#secret-rows input[readonly][value="DB_SECRET"]', {timeout: UI_WAIT});
    let m = (await fetchApi('/api/projects/db-site')).manifest;
    assert.equal(m.env.DB_VAR, 'plain value');
    assert.equal(m.secrets.DB_SECRET, '********');
    // Write-only: the page shows the secret's name, never its value.
    assert.equal(await page.locator('#secret-rows input[type="password"]').inputValue(), '');
    assert.ok(!(await page.content()).includes(secret), 'the secret value is not in the page');
    // The preview started from the page gets both.
    await page.click('#btn-preview-start');
    await page.waitForSelector('#preview .badge.running', {timeout: UI_WAIT});
    const previewPort = (await fetchApi('/api/projects/db-site')).environments.preview.port;
    await page.selectOption('#log-env', 'preview');
    await waitFor('the preview log in the tail', async () => (await text('#log-tail')).includes('port ' + previewPort), UI_WAIT);
    const seen = async (name) => (await fetch(`http://127.0.0.1:${previewPort}/env/${name}`)).json();
    assert.equal((await seen('DB_SECRET')).sha256, sha(secret));
    assert.equal((await seen('DB_VAR')).sha256, sha('plain value'));
    // Saving again without touching the secret keeps its value.
    await page.locator('#env-rows .env-row:has(input[value="DB_VAR"])').locator('input').nth(1).fill('changed');
    await page.click('#save-settings');
    await page.waitForSelector('#env-rows input[value="changed"]', {timeout: UI_WAIT});
    await page.click('#btn-preview-restart');
    await page.waitForSelector('#preview .badge.running', {timeout: UI_WAIT});
    await waitFor('the restarted preview', async () => (await seen('DB_VAR')).sha256 === sha('changed'));
    assert.equal((await seen('DB_SECRET')).sha256, sha(secret));
    await page.click('#btn-preview-stop');
    await page.waitForSelector('#preview .badge.stopped', {timeout: UI_WAIT});

    step('cancel');
    fs.writeFileSync(path.join(site, 'BUILD_SLEEP'), '60\n');
    await page.click('#deploy');
    await page.waitForSelector('li[data-phase="building"][data-state="active"]', {timeout: UI_WAIT});
    // The project page links to the deploy in progress; following it picks the stream up live.
    await page.click('a:has-text("db-site")');
    await page.waitForSelector('#production a[href^="#/d/"]', {timeout: UI_WAIT});
    await page.click('#production a[href^="#/d/"]');
    await page.waitForSelector('li[data-phase="building"][data-state="active"]', {timeout: UI_WAIT});
    assert.equal(await page.getAttribute('li[data-phase="queued"]', 'data-state'), 'done');
    await page.click('#cancel');
    await page.waitForSelector('#deploy-status .badge.cancelled', {timeout: UI_WAIT});
    assert.match(await text('#deploy-result'), /Failed/);
    fs.unlinkSync(path.join(site, 'BUILD_SLEEP'));
    await page.click('a:has-text("db-site")');
    await page.waitForSelector('#production .badge.running', {timeout: UI_WAIT});
    assert.match(await text('#production'), new RegExp(first), 'the cancelled deploy changed nothing');

    step('canary');
    // A canary: the page shows its step and both releases' figures live, and Promote ends it.
    const m2 = (await fetchApi('/api/projects/db-site')).manifest;  // secrets come back as ******** and keep their values
    m2.production.canary = {steps: [50], interval_s: 600, min_requests: 100000};
    const put = await fetch(srv.base + '/api/projects/db-site', {method: 'PUT', body: JSON.stringify(m2),
      headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + srv.token}});
    assert.equal(put.status, 200, 'manifest with a canary: ' + await put.text());
    fs.writeFileSync(path.join(site, 'VERSION'), '3\n');
    await page.click('a:has-text("db-site")');
    await page.waitForSelector('#deploy', {timeout: UI_WAIT});
    await page.click('#deploy');
    await page.waitForSelector('li[data-phase="canary"][data-state="active"]', {timeout: UI_WAIT});
    await page.waitForSelector('#canary:not([hidden])', {timeout: UI_WAIT});
    assert.match(await text('#canary-step'), /Step 1 of 1: 50 % of requests to the candidate/);
    // Real requests through the site's stable port: the figures count them live, on both sides.
    const stable = (await fetchApi('/api/projects/db-site')).ports.production;
    const requestsOf = async (side) => Number(await text(`#canary tr[data-side="${side}"] td[data-figure="requests"]`));
    const candidateRequests = () => requestsOf('candidate');
    const servingRequests = () => requestsOf('serving');
    await waitFor('requests counted on both sides', async () => {
      await Promise.all(Array.from({length: 4}, () => fetch(`http://127.0.0.1:${stable}/`).then((r) => r.text())));
      return (await candidateRequests()) > 0 && (await servingRequests()) > 0;
    }, UI_WAIT);
    await shot('canary');
    await page.click('#promote');
    await page.waitForSelector('li[data-phase="completed"][data-state="done"]', {timeout: UI_WAIT});
    assert.match(await text('#deploy-result'), /Deployed release/);
    assert.equal((await (await fetch(`http://127.0.0.1:${stable}/`)).text()).trim(), 'release 3');

    step('one-shot');
    // The one-shot page: names checked as typed, then a deploy until the URL appears.
    await page.click('a[href="#/oneshot"]');
    await page.fill('#oneshot-name', 'Bad_Name');
    await page.waitForSelector('#oneshot-check.bad', {timeout: UI_WAIT});
    assert.ok(await page.isDisabled('#oneshot-deploy'));
    await page.fill('#oneshot-name', 'db-site');
    await page.waitForSelector('#oneshot-check:has-text("taken")', {timeout: UI_WAIT});
    assert.ok(await page.isDisabled('#oneshot-deploy'));
    await page.fill('#oneshot-name', 'db-stack');
    await page.waitForSelector('#oneshot-check.ok:has-text("db-stack is available")', {timeout: UI_WAIT});
    step('one-shot deploy');
    await page.click('#oneshot-deploy');
    await page.waitForSelector('#oneshot-url a', {timeout: UI_WAIT});
    assert.match(await text('#oneshot-url'), /db-stack is live/);
    assert.match(await page.getAttribute('#oneshot-url a', 'href'), /^https?:\/\/db-stack\./);
    // ... and it answers with the template's app.
    const live = await fetch(await page.getAttribute('#oneshot-url p.muted a', 'href'));
    assert.equal((await live.text()).trim(), 'release stack');
    assert.equal(await page.getAttribute('li[data-phase="completed"]', 'data-state'), 'done');
    // Every phase that ran shows as done, also one passed before the page subscribed.
    for (const p of ['building', 'starting', 'health_checking', 'switching']) {
      await page.waitForSelector(`li[data-phase="${p}"][data-state="done"]`, {timeout: UI_WAIT});
    }
    await shot('oneshot');

    step('projects page');
    // The projects page shows both, running, with their URLs.
    await page.click('a[data-nav="projects"]');
    await page.waitForSelector('[data-project="db-stack"] [data-env="production"]', {timeout: UI_WAIT});
    await page.waitForSelector('[data-project="db-site"] [data-env="production"]', {timeout: UI_WAIT});
    assert.match(await text('[data-project="db-site"] [data-env="production"]'), /running/);
    await shot('projects');

    step('sign out');
    // Signing out drops the session.
    await page.click('#sign-out');
    await page.waitForSelector('#token', {timeout: UI_WAIT});
    assert.equal((await context.cookies()).length, 0);
    assert.ok(!(await page.isVisible('#nav')));
    assert.equal(await page.evaluate(async () => (await fetch('/api/projects')).status), 401, 'signed out for real');
    assert.deepEqual(errors, [], 'no script errors in the page');
    ok = true;
    console.log('dashboard test passed; screenshots in ' + shots);
  } finally {
    if (browser) await browser.close();
    await srv.stop(!ok);
  }
}

main().catch((e) => {
  console.error(e && e.stack || e);
  process.exit(1);
});
