// End-to-end test of the page in headless Chromium, driven through Debian's
// chromedriver with plain WebDriver HTTP calls (Node's built-in fetch; no npm
// packages). It checks the page shows the compression the browser
// negotiated (permessage-deflate with the harness's --deflate on server,
// none with its --deflate off one), runs the seed tutorial's JS snippet
// against the server's bare origin, types a message and sends it, sends bytes as hex and a file,
// checks each echo in the log, joins a room, has two more windows of the
// page chat with each other and receive a `duplex push` from the real CLI,
// checks that RTT shows, restarts the server through the harness and
// watches the page reconnect, restarts it again and checks the rooms panel
// rejoins by itself and says what the restart did to the room's history
// ("messages may be missing: history expired" with the memory engine;
// with the harness's --redis, two messages sent through the cluster's other
// server meanwhile are replayed and "recovered 2 messages"), saves a
// screenshot, then fills the log with a burst of messages and checks it
// stays smooth. From the harness's TLS server (https, --jwt-secret) it
// checks the page's echo goes over wss:// by default, byte-exact, and that
// the rooms panel's token field decides whether /ws opens and who the
// member is (the token's `sub`), and that a room outside the token's
// `rooms` claim is refused as forbidden while the connection stays.
//
// Run it inside the harness (scripts/test-browser.sh does):
//   duplex-browser-harness [--ui-dir dist] -- node e2e/page.mjs
// (the harness starts its server with --deflate on and a second one with
// --deflate off; with the harness's --deflate off the compression check fails)
// Environment:
//   DUPLEX_TEST_HTTP_URL     the server; the page is at / when it serves --ui-dir
//   DUPLEX_TEST_WS_URL       the echo endpoint (a --deflate on server)
//   DUPLEX_TEST_DEFLATE_OFF_WS_URL  the echo endpoint of a --deflate off server
//   DUPLEX_TEST_CONTROL_URL  the harness's control endpoint (restart test)
//   DUPLEX_TEST_PUSH_TOKEN   the server's --push-token (push test)
//   DUPLEX_TEST_REDIS_URL    set in the harness's Redis variant (--redis): the
//                            history survives a restart (recovery test)
//   DUPLEX_TEST_SERVER_BIN   the duplex binary, whose `duplex push` it runs
//   DUPLEX_TEST_TLS_HTTP_URL the TLS server (https; the page with --ui-dir)
//   DUPLEX_TEST_TLS_SPKI     its certificate's key hash: Chromium trusts
//                            exactly it (--ignore-certificate-errors-spki-list)
//   DUPLEX_TEST_JWT_SECRET   its --jwt-secret, to sign tokens (HS256)
//   DUPLEX_E2E_DIST          serve this trunk build ourselves instead (for a
//                            server without --ui-dir); the page gets ?url=
//   DUPLEX_E2E_SCREENSHOT    where to save the screenshot
//                            (default target/browser-tests/page.png)
//   DUPLEX_E2E_BURST         messages in the smoothness burst (default 5000)
//   CHROMEDRIVER, CHROMIUM   the binaries (default: on PATH, /usr/bin/chromium)

import { execFile, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, statSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { promisify } from 'node:util';

const STEP_MS = 10_000; // the longest any one wait may take
const env = process.env;
const wsUrl = required('DUPLEX_TEST_WS_URL');
const screenshotPath = resolve(env.DUPLEX_E2E_SCREENSHOT || 'target/browser-tests/page.png');
const burst = Number(env.DUPLEX_E2E_BURST || 5000);
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

function required(name) {
  const value = env[name];
  if (!value) {
    console.error(`e2e: ${name} is not set: run this through scripts/test-browser.sh`);
    process.exit(2);
  }
  return value;
}

// Like `required`, but fails only the check that needs it.
function given(name) {
  if (!env[name]) throw new Error(`${name} is not set: run this through scripts/test-browser.sh`);
  return env[name];
}

const results = [];
let failed = 0;
async function check(name, body) {
  const started = performance.now();
  try {
    const detail = await body();
    const ms = Math.round(performance.now() - started);
    results.push(`ok   ${name} (${ms} ms)${detail ? `: ${detail}` : ''}`);
    console.error(`e2e: ok   ${name}${detail ? `: ${detail}` : ''}`);
  } catch (error) {
    failed += 1;
    results.push(`FAIL ${name}: ${error.message}`);
    console.error(`e2e: FAIL ${name}: ${error.stack || error}`);
  }
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createNetServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

async function until(what, probe, timeoutMs = STEP_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// --- the page's origin: the server itself, or our own static server --------
const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
let staticServer;
async function pageUrl() {
  if (!env.DUPLEX_E2E_DIST) return `${required('DUPLEX_TEST_HTTP_URL')}/`;
  const root = resolve(env.DUPLEX_E2E_DIST);
  staticServer = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(root, path === '/' ? 'index.html' : path);
    if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': MIME[extname(file)] || 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => staticServer.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${staticServer.address().port}/?url=${encodeURIComponent(wsUrl)}`;
}

// --- WebDriver ---------------------------------------------------------------
let driver;
let base;
let session;
async function wd(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60_000),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value).slice(0, 400)}`);
  return json.value;
}
const s = (path) => `/session/${session}${path}`;
const run = (script, ...args) => wd('POST', s('/execute/sync'), { script, args });
async function element(css) {
  const found = await wd('POST', s('/element'), { using: 'css selector', value: css });
  return found[ELEMENT];
}
async function type(css, text) {
  const id = await element(css);
  await wd('POST', s(`/element/${id}/clear`), {});
  await wd('POST', s(`/element/${id}/value`), { text });
}
const click = async (css) => wd('POST', s(`/element/${await element(css)}/click`), {});
const text = (css) => run('const e = document.querySelector(arguments[0]); return e ? e.textContent : null;', css);

// The rows the virtualised log currently shows: [{dir, kind, size, content}].
const rows = () => run(`return [...document.querySelectorAll('#log-rows .entry:not([hidden])')].map(r => ({
  dir: r.classList.contains('in') ? 'in' : r.classList.contains('out') ? 'out' : 'event',
  kind: r.dataset.kind, size: r.querySelector('.size').textContent,
  content: r.querySelector('.content').textContent }));`);
const echoed = (kind, content) =>
  until(`a received ${kind} row "${content}"`, async () =>
    (await rows()).find((r) => r.dir === 'in' && r.kind === kind && r.content === content));
const state = () => run("return document.getElementById('duplex').dataset.state;");
// The compression label next to the state badge, and the extensions it was
// read from (WebSocket.extensions, in data-extensions).
const compression = () => run(`const e = document.getElementById('compression');
  return { label: e.textContent, extensions: e.dataset.extensions, title: e.title };`);
async function compressionShows(label) {
  let shown;
  try {
    return await until(`the page to show "${label}"`, async () => {
      shown = await compression();
      return shown.label === label && shown;
    });
  } catch (error) {
    throw new Error(`${error.message}; it shows ${JSON.stringify(shown)}`);
  }
}

// --- windows: WebDriver commands act on the window switched to last --------
const windowHandle = () => wd('GET', s('/window'));
const switchTo = (handle) => wd('POST', s('/window'), { handle });
// A new top-level window (not a tab: a background tab may be throttled).
const newWindow = async () => (await wd('POST', s('/window/new'), { type: 'window' })).handle;
async function inWindow(handle, body) {
  await switchTo(handle);
  return body();
}

// The rooms panel, as the person sees it.
const memberItems = () => run("return [...document.querySelectorAll('#room-members li')].map(li => li.textContent);");
const chatLines = () => run(`return [...document.querySelectorAll('#room-chat .line')].map(l => ({
  cls: l.className, who: (l.querySelector('.who') || {}).textContent || '',
  what: (l.querySelector('.what') || {}).textContent || '' }));`);
const chatLine = (what, pred, timeoutMs = STEP_MS) =>
  until(`the chat line "${what}"`, async () => (await chatLines()).find((l) => l.what === what && pred(l)), timeoutMs);
// Joins `room` as `name` in the current window's panel and waits for the
// server's confirmation ("Members of ROOM (N)"; "(joining…)" before).
async function joinRoom(name, room) {
  await type('#room-name', name);
  await type('#room-room', room);
  await click('#room-join');
  await until(`${name} joined ${room}`, async () => {
    const title = (await text('#room-members-title')) || '';
    return title.startsWith(`Members of ${room} (`) && !title.includes('joining');
  });
}

// `duplex push`, the real CLI, with a bounded wait. Resolves to
// { code, stdout, stderr } whatever the exit status.
const execFileAsync = promisify(execFile);
async function duplexPush(args, token) {
  const bin = given('DUPLEX_TEST_SERVER_BIN');
  try {
    const { stdout, stderr } = await execFileAsync(bin, ['push', ...args], {
      env: { ...env, DUPLEX_PUSH_TOKEN: token },
      timeout: STEP_MS,
    });
    return { code: 0, stdout: stdout.trim(), stderr: stderr.trim() };
  } catch (error) {
    if (typeof error.code !== 'number') throw error; // not run, or killed at the timeout
    return { code: error.code, stdout: String(error.stdout).trim(), stderr: String(error.stderr).trim() };
  }
}

// An HS256 JWT, as an issuer sharing the server's --jwt-secret makes one.
function jwt(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

async function control(path) {
  const response = await fetch(`${required('DUPLEX_TEST_CONTROL_URL')}${path}`, { method: 'POST' });
  const body = await response.text();
  if (!response.ok) throw new Error(`control ${path}: ${response.status} ${body}`);
  return body;
}

async function main() {
  const url = await pageUrl();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  driver = spawn(env.CHROMEDRIVER || 'chromedriver', [`--port=${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await until('chromedriver', async () => {
    try { return (await wd('GET', '/status')).ready; } catch { return false; }
  });
  const created = await wd('POST', '/session', {
    capabilities: {
      alwaysMatch: {
        browserName: 'chrome',
        'goog:chromeOptions': {
          binary: env.CHROMIUM || '/usr/bin/chromium',
          args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
            '--window-size=1280,860', '--disable-background-networking', '--disable-component-update',
            '--disable-sync', '--no-first-run',
            // Trust exactly the TLS server's self-signed certificate, by its
            // key's hash, rather than any certificate (acceptInsecureCerts).
            // Needs a --user-data-dir, which chromedriver always sets.
            ...(env.DUPLEX_TEST_TLS_SPKI ? [`--ignore-certificate-errors-spki-list=${env.DUPLEX_TEST_TLS_SPKI}`] : [])],
        },
      },
    },
  });
  session = created.sessionId;

  await check('the page loads and connects within 1 s', async () => {
    const started = Date.now();
    await wd('POST', s('/url'), { url });
    await until('state open', async () => (await state()) === 'open');
    const t = await run(`const n = performance.getEntriesByType('navigation')[0];
      return { ready: Number(document.getElementById('duplex').dataset.readyMs), dom: n.domContentLoadedEventEnd };`);
    if (!(t.ready > 0 && t.ready < 1000)) throw new Error(`page ready after ${t.ready} ms`);
    return `wasm up ${Math.round(t.ready)} ms after navigation start, open ${Date.now() - started} ms after load began`;
  });

  await check('the page shows the compression the browser negotiated', async () => {
    // The harness's server runs with --deflate on, and Chromium offers
    // permessage-deflate on every socket.
    const on = await compressionShows('compression: permessage-deflate');
    if (!on.extensions.includes('permessage-deflate') || on.title !== on.extensions) {
      throw new Error(`against --deflate on: ${JSON.stringify(on)}`);
    }
    // The same page pointed at the --deflate off server, in its own window.
    const offUrl = new URL(url);
    offUrl.searchParams.set('url', given('DUPLEX_TEST_DEFLATE_OFF_WS_URL'));
    const main = await windowHandle();
    const handle = await newWindow();
    let off;
    try {
      await switchTo(handle);
      await wd('POST', s('/url'), { url: offUrl.href });
      await until('the page open on the --deflate off server', async () => (await state()) === 'open');
      off = await compressionShows('compression: none');
      if (off.extensions !== '') throw new Error(`against --deflate off: ${JSON.stringify(off)}`);
    } finally {
      await wd('DELETE', s('/window')).catch(() => {});
      await switchTo(main);
    }
    return `--deflate on: "${on.label}" (${on.extensions}); --deflate off: "${off.label}"`;
  });

  await check("the seed tutorial's five-line JS snippet gets its message back byte-exact", async () => {
    // The tutorial's page, unchanged but for the host: new WebSocket to the
    // bare origin (path /), send on open, read the echo, close.
    const origin = new URL(wsUrl);
    const seedUrl = `ws://${origin.host}`;
    const result = await wd('POST', s('/execute/async'), {
      script: `const [url, done] = [arguments[0], arguments[arguments.length - 1]];
        const msg = "What you sent is: h\u00e9llo \u{1F44B} \u2014 seed";
        const out = {};
        var ws = new WebSocket(url);
        ws.onopen = function () { ws.send(msg); };
        ws.onmessage = function (e) { out.exact = e.data === msg; ws.close(1000, "done"); };
        ws.onclose = function (e) { out.code = e.code; out.clean = e.wasClean; done(out); };
        ws.onerror = function () { out.error = true; };`,
      args: [seedUrl],
    });
    if (!result.exact) throw new Error(`echo not byte-exact: ${JSON.stringify(result)}`);
    if (result.code !== 1000 || !result.clean) throw new Error(`close: ${JSON.stringify(result)}`);
    return `${seedUrl}: echo byte-exact, clean close 1000`;
  });

  await check('a typed text message is echoed into the log', async () => {
    await type('#send-text', 'hello from the e2e test');
    await click('#send-text-button');
    await echoed('text', 'hello from the e2e test');
    const out = (await rows()).find((r) => r.dir === 'out' && r.content === 'hello from the e2e test');
    if (!out) throw new Error('no sent row');
  });

  await check('bytes typed as hex are echoed byte for byte', async () => {
    await type('#send-hex', 'DE AD be:ef 00 01');
    await click('#send-hex-button');
    const row = await echoed('binary', 'de ad be ef 00 01');
    if (row.size !== '6 B') throw new Error(`size column ${row.size}`);
  });

  await check('a file is sent as one binary message and echoed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'duplex-e2e-'));
    const file = join(dir, 'sample.bin');
    writeFileSync(file, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff)));
    await wd('POST', s(`/element/${await element('#send-file')}/value`), { text: file });
    await click('#send-file-button');
    const row = await until('the file echo', async () =>
      (await rows()).find((r) => r.dir === 'in' && r.kind === 'binary' && r.size === '2.9 KiB'));
    rmSync(dir, { recursive: true, force: true });
    if (!row.content.startsWith('00 07 0e 15')) throw new Error(`preview ${row.content}`);
  });

  await check('the rooms panel joins a room, lists the member and shows a sent message', async () => {
    await type('#room-name', 'e2e-ada');
    await type('#room-room', 'e2e-room');
    await click('#room-join');
    await until('e2e-ada in the member list', async () => ((await text('#room-members')) || '').includes('e2e-ada'));
    await type('#room-text', 'hello, room');
    await click('#room-send');
    await until('the message in the room chat', async () =>
      ((await text('#room-chat .line:not(.note)')) || '').includes('hello, room'));
    return `${await text('#room-members-title')}: ${await text('#room-members')}`;
  });

  await check('a join the server refuses is reported and not left "joining…"', async () => {
    // 40 two-byte characters: within the input's maxlength (64 characters)
    // but over the server's 64-byte room limit, so the server refuses it.
    const tooLong = 'é'.repeat(40);
    await type('#room-room', tooLong);
    await click('#room-join');
    const status = await until('the refusal in the status line', async () => {
      const shown = (await text('#room-status')) || '';
      return shown.startsWith(`could not join ${tooLong}:`) && shown;
    });
    // The panel is back on the room it is in, not on the refused one.
    const title = await until('the title back on e2e-room', async () => {
      const shown = (await text('#room-members-title')) || '';
      if (shown.includes('joining')) return false;
      return /^Members of e2e-room \(\d+\)$/.test(shown) && shown;
    });
    return `${status}; ${title}`;
  });

  await check('two windows chat in a room, and `duplex push` reaches both', async () => {
    const token = given('DUPLEX_TEST_PUSH_TOKEN');
    const httpUrl = given('DUPLEX_TEST_HTTP_URL');
    const room = 'e2e-two';
    const main = await windowHandle();
    const windows = [];
    try {
      // Two fresh windows of the page, each joining under its own name.
      const people = ['e2e-ann', 'e2e-ben'];
      for (const name of people) {
        const handle = await newWindow();
        windows.push(handle);
        await inWindow(handle, async () => {
          await wd('POST', s('/url'), { url });
          await until(`${name}'s page open`, async () => (await state()) === 'open');
          await type('#room-name', name);
          await type('#room-room', room);
          await click('#room-join');
          // "Members of ROOM (N)" once the server confirmed; "(joining…)" before.
          await until(`${name} joined`, async () =>
            /^Members of \S+ \(\d+\)$/.test((await text('#room-members-title')) || ''));
        });
      }
      const [ann, ben] = windows;
      // Each lists both members, and marks only itself as "(you)".
      for (const [i, handle] of windows.entries()) {
        await inWindow(handle, () => until(`both members in ${people[i]}'s list`, async () => {
          const items = await memberItems();
          if (items.length !== 2 || !people.every((p) => items.some((m) => m.startsWith(`${p} #`)))) return false;
          const mine = items.filter((m) => m.endsWith(' (you)'));
          if (mine.length === 0) return false; // the welcome not handled yet
          if (mine.length !== 1 || !mine[0].startsWith(`${people[i]} #`)) {
            throw new Error(`${people[i]}'s member list marks the wrong "(you)": ${JSON.stringify(items)}`);
          }
          return items;
        }));
      }
      // A message each way, shown with the sender's name in the other window.
      for (const [from, to, name, other] of [[ann, ben, 'e2e-ann', 'e2e-ben'], [ben, ann, 'e2e-ben', 'e2e-ann']]) {
        const said = `hello ${other}, from ${name}`;
        await inWindow(from, async () => {
          await type('#room-text', said);
          await click('#room-send');
        });
        await inWindow(to, () => chatLine(said, (l) => l.who.startsWith(`${name} #`) && !l.cls.includes('server')));
      }

      // Push is refused without the token, and with a wrong one.
      const api = `${httpUrl}/api/rooms/${room}/messages`;
      const anonymous = await fetch(api, { method: 'POST', body: 'no token', signal: AbortSignal.timeout(STEP_MS) });
      if (anonymous.status !== 401) throw new Error(`push without a token: HTTP ${anonymous.status}, expected 401`);
      const server = ['--server', httpUrl, '--room', room];
      const wrong = await duplexPush([...server, 'wrong token'], `not-${token}`);
      if (wrong.code === 0 || !wrong.stderr.includes('401')) {
        throw new Error(`duplex push with a wrong token: exit ${wrong.code}, ${wrong.stdout} ${wrong.stderr}`);
      }

      // The real CLI with the server's token: both members get it, from "server".
      const pushed = `deploy finished ${Date.now()}`;
      const push = await duplexPush([...server, pushed], token);
      if (push.code !== 0) throw new Error(`duplex push: exit ${push.code}: ${push.stderr}`);
      let answer;
      try { answer = JSON.parse(push.stdout); } catch { throw new Error(`duplex push printed ${push.stdout}`); }
      if (answer.room !== room || answer.delivered !== 2) throw new Error(`duplex push answered ${push.stdout}`);
      for (const handle of windows) {
        await inWindow(handle, () => chatLine(pushed, (l) => l.cls.split(' ').includes('server') && l.who === 'server'));
      }
      // Neither window shows the refused pushes, and the first window, in
      // another room, shows none of it.
      for (const handle of windows) {
        const refused = (await inWindow(handle, chatLines)).filter((l) => l.what === 'no token' || l.what === 'wrong token');
        if (refused.length) throw new Error(`a refused push showed: ${JSON.stringify(refused)}`);
      }
      const elsewhere = (await inWindow(main, chatLines)).filter((l) => l.what === pushed);
      if (elsewhere.length) throw new Error(`the push showed in another room: ${JSON.stringify(elsewhere)}`);
      await switchTo(windows[1]);
      const shot = screenshotPath.replace(/\.png$/, '-rooms.png');
      mkdirSync(dirname(shot), { recursive: true });
      writeFileSync(shot, Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
      return `${push.stdout}; 401 without the token; ${shot}`;
    } finally {
      for (const handle of windows) {
        await switchTo(handle).then(() => wd('DELETE', s('/window'))).catch(() => {});
      }
      await switchTo(main);
    }
  });

  if (env.DUPLEX_E2E_DIST) {
    console.error('e2e: the TLS checks need the page served by the harness (--ui-dir), not DUPLEX_E2E_DIST: skipped');
  } else {
    await tlsChecks();
  }

  await check('round-trip times show', async () => {
    await until('an RTT sample', async () => !['–', null].includes(await text('#rtt-last')));
    return `last ${await text('#rtt-last')}, p50 ${await text('#rtt-p50')}, p99 ${await text('#rtt-p99')}`;
  });

  if (env.DUPLEX_TEST_CONTROL_URL) {
    await check('the page reconnects by itself after the server restarts', async () => {
      await control('/server/stop');
      try {
        await until('state reconnecting', async () => (await state()) === 'reconnecting');
        // No socket, nothing negotiated to show.
        await compressionShows('compression: –');
        await type('#send-text', 'sent while the server was down');
        await click('#send-text-button');
        // The counter is redrawn on the next animation frame, not at once.
        await until('the queued counter to show the message', async () =>
          (await text('#count-queued')).startsWith('1 '));
      } finally {
        // Whatever failed above, the later checks need the server back.
        await control('/server/start');
      }
      await until('state open', async () => (await state()) === 'open', 20_000);
      await compressionShows('compression: permessage-deflate');
      await echoed('text', 'sent while the server was down');
      const reconnects = await text('#count-reconnects');
      if (reconnects !== '1') throw new Error(`reconnects counter ${reconnects}`);
    });

    // Issue 11, part 4: the rooms panel rejoins from where it was in each
    // room's history, and says what that recovered or lost. Which one
    // depends on the harness: without --redis the server keeps history in
    // memory, and a restart loses it.
    if (!env.DUPLEX_TEST_REDIS_URL) {
      await check('after a restart that lost the history (memory engine) the rooms panel says messages may be missing', async () => {
        const room = 'e2e-history';
        const main = await windowHandle();
        const handle = await newWindow();
        try {
          await switchTo(handle);
          await wd('POST', s('/url'), { url });
          await until('the page open', async () => (await state()) === 'open');
          await joinRoom('e2e-eve', room);
          await type('#room-text', 'before the restart');
          await click('#room-send');
          await chatLine('before the restart', (l) => l.who.startsWith('e2e-eve #'));
          await control('/server/stop');
          try {
            await chatLine('connection lost; rejoining', (l) => l.cls.split(' ').includes('note'));
          } finally {
            await control('/server/start');
          }
          // The page rejoins by itself (no click), with `since`, and the
          // restarted server has no history to replay.
          const warning = await chatLine('messages may be missing: history expired',
            (l) => l.cls.split(' ').includes('warning'), 20_000);
          const title = await until('the room rejoined', async () => {
            const shown = (await text('#room-members-title')) || '';
            return new RegExp(`^Members of ${room} \\(\\d+\\)$`).test(shown) && shown;
          });
          // A new epoch: offsets start again, and the next message shows.
          await type('#room-text', 'after the restart');
          await click('#room-send');
          await chatLine('after the restart', (l) => l.who.startsWith('e2e-eve #'));
          const shot = screenshotPath.replace(/\.png$/, '-history.png');
          mkdirSync(dirname(shot), { recursive: true });
          writeFileSync(shot, Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
          const warnings = (await chatLines()).filter((l) => l.cls.split(' ').includes('warning'));
          if (warnings.length !== 1) throw new Error(`warnings: ${JSON.stringify(warnings)}`);
          return `"${warning.what}" (${warning.cls}); ${title}; ${shot}`;
        } finally {
          await wd('DELETE', s('/window')).catch(() => {});
          await switchTo(main);
          // The later checks need the main page's socket back.
          await until('the main page open again', async () => (await state()) === 'open', 20_000);
        }
      });
    } else {
      await check('messages published while the server was down are recovered after the restart (Redis)', async () => {
        // Two windows in one room: ann on the restarted server, ben on its
        // cluster peer (the harness's second server), which stays up and
        // shares the history through Redis.
        const room = 'e2e-recover';
        const peerUrl = new URL(url);
        peerUrl.searchParams.set('url', given('DUPLEX_TEST_DEFLATE_OFF_WS_URL'));
        const main = await windowHandle();
        const ann = await newWindow();
        const ben = await newWindow();
        const away = ['sent while ann was away 1', 'sent while ann was away 2'];
        try {
          await inWindow(ann, async () => {
            await wd('POST', s('/url'), { url });
            await until('ann\'s page open', async () => (await state()) === 'open');
            await joinRoom('e2e-ann', room);
            // A message of her own first, so her position is a real
            // offset in the room's epoch, not the empty room's 0.
            await type('#room-text', 'ann was here');
            await click('#room-send');
            await chatLine('ann was here', (l) => l.who.startsWith('e2e-ann #'));
          });
          await inWindow(ben, async () => {
            await wd('POST', s('/url'), { url: peerUrl.href });
            await until('ben\'s page open', async () => (await state()) === 'open');
            await joinRoom('e2e-ben', room);
          });
          await control('/server/stop');
          try {
            await inWindow(ann, () => chatLine('connection lost; rejoining', (l) => l.cls.split(' ').includes('note')));
            await inWindow(ben, async () => {
              for (const said of away) {
                await type('#room-text', said);
                await click('#room-send');
                await chatLine(said, (l) => l.who.startsWith('e2e-ben #'));
              }
            });
          } finally {
            await control('/server/start');
          }
          // Ann's page rejoins by itself since its last message: the two
          // are replayed, then counted.
          const lines = await inWindow(ann, async () => {
            await chatLine('recovered 2 messages', (l) => l.cls.split(' ').includes('note'), 20_000);
            return chatLines();
          });
          const at = lines.findIndex((l) => l.what === 'recovered 2 messages');
          const replayed = lines.slice(at - 2, at).map((l) => l.what);
          if (JSON.stringify(replayed) !== JSON.stringify(away)) {
            throw new Error(`before the count: ${JSON.stringify(lines.slice(Math.max(0, at - 4), at + 1))}`);
          }
          const warnings = lines.filter((l) => l.cls.split(' ').includes('warning'));
          if (warnings.length) throw new Error(`warnings: ${JSON.stringify(warnings)}`);
          const shot = screenshotPath.replace(/\.png$/, '-recovery.png');
          await inWindow(ann, async () => {
            // Both of the page's sockets back, for a picture of the page
            // as its person sees it once it settled.
            await until('ann\'s page open again', async () => (await state()) === 'open', 20_000);
            mkdirSync(dirname(shot), { recursive: true });
            writeFileSync(shot, Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
          });
          return `${replayed.length} replayed, then "${lines[at].what}"; ${shot}`;
        } finally {
          for (const handle of [ann, ben]) {
            await switchTo(handle).then(() => wd('DELETE', s('/window'))).catch(() => {});
          }
          await switchTo(main);
          await until('the main page open again', async () => (await state()) === 'open', 20_000);
        }
      });
    }
  }

  await check('screenshot saved', async () => {
    // Let one more RTT probe land so the chart has a few points.
    await new Promise((r) => setTimeout(r, 1500));
    const png = Buffer.from(await wd('GET', s('/screenshot')), 'base64');
    mkdirSync(dirname(screenshotPath), { recursive: true });
    writeFileSync(screenshotPath, png);
    // And at a phone's width: one column, nothing cut off sideways.
    const desktop = await wd('GET', s('/window/rect'));
    await wd('POST', s('/window/rect'), { width: 390, height: 844 });
    const overflow = await run('return document.documentElement.scrollWidth - window.innerWidth;');
    const phonePath = screenshotPath.replace(/\.png$/, '-phone.png');
    writeFileSync(phonePath, Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
    await wd('POST', s('/window/rect'), { width: desktop.width, height: desktop.height });
    if (overflow > 0) throw new Error(`the page is ${overflow} px wider than a phone screen`);
    return `${screenshotPath} (${statSync(screenshotPath).size} bytes), ${phonePath}`;
  });

  await check(`the log stays smooth with ${burst} echoed messages in it`, async () => {
    // Clear the log (and its frame statistics), and watch for long tasks:
    // a task over 50 ms is what the browser itself calls janky.
    await click('#clear-log');
    await run(`window.__longTasks = [];
      new PerformanceObserver(list => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
        .observe({ type: 'longtask' });`);
    const before = Number((await text('#count-received')).split(' ')[0]);
    await type('#send-repeat', String(burst));
    await type('#send-text', 'burst');
    const started = Date.now();
    await click('#send-text-button');
    try {
      await until(`${burst} echoes`, async () =>
        Number((await text('#count-received')).split(' ')[0]) >= before + burst, 60_000);
    } catch (error) {
      const counters = await run(`return ['count-sent', 'count-received', 'count-queued', 'log-count', 'state']
        .map(id => id + ': ' + document.getElementById(id).textContent).join(', ');`);
      throw new Error(`${error.message}; ${counters}`);
    }
    const took = Date.now() - started;
    // Scroll to the middle of the log and back: rows must follow.
    const drawn = await run(`const log = document.getElementById('log');
      log.scrollTop = log.scrollHeight / 2;
      return new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(() => ok({
        rows: document.querySelectorAll('#log-rows .entry').length,
        entries: document.getElementById('log-count').textContent,
        maxFrame: Number(log.dataset.maxFrameMs),
        longTasks: window.__longTasks.length,
        longestTask: Math.round(Math.max(0, ...window.__longTasks)) }))));`);
    if (drawn.rows > 120) throw new Error(`${drawn.rows} row elements: the log is not virtualised`);
    if (!(drawn.maxFrame < 50)) throw new Error(`drawing a frame took ${drawn.maxFrame} ms`);
    const middle = await rows();
    if (!middle.some((r) => r.content === 'burst')) throw new Error('no rows drawn after scrolling');
    return `${burst} round trips in ${took} ms; ${drawn.entries}; ${drawn.rows} row elements; ` +
      `longest draw ${drawn.maxFrame} ms; ${drawn.longTasks} long tasks, longest ${drawn.longestTask} ms`;
  });
}

// Issue 13: the page from the harness's TLS server, which has --jwt-secret,
// in a window of its own.
async function tlsChecks() {
  const httpsUrl = given('DUPLEX_TEST_TLS_HTTP_URL');
  const secret = given('DUPLEX_TEST_JWT_SECRET');
  const wssEcho = `${httpsUrl.replace(/^https:/, 'wss:')}/echo`;
  const roomsStatus = async () => (await text('#room-status')) || '';
  const main = await windowHandle();
  const handle = await newWindow();
  try {
    await switchTo(handle);
    await check('from https:// the page connects its echo over wss:// by default, byte-exact', async () => {
      await wd('POST', s('/url'), { url: `${httpsUrl}/` });
      await until('the page open over TLS', async () => (await state()) === 'open');
      const url = await run("return document.getElementById('url').value;");
      if (url !== wssEcho) throw new Error(`the page connected to ${url}, expected ${wssEcho}`);
      const said = 'over TLS: h\u00e9llo \u{1F44B}';
      await type('#send-text', said);
      await click('#send-text-button');
      await echoed('text', said);
      // And 64 KiB of every byte value, compared in the page.
      const result = await wd('POST', s('/execute/async'), {
        script: `const [url, done] = [arguments[0], arguments[arguments.length - 1]];
          const sent = new Uint8Array(65536).map((_, i) => (i * 31 + (i >> 8)) & 255);
          const ws = new WebSocket(url);
          ws.binaryType = 'arraybuffer';
          ws.onopen = () => ws.send(sent);
          ws.onmessage = (e) => {
            const got = new Uint8Array(e.data);
            done({ exact: got.length === sent.length && got.every((b, i) => b === sent[i]), length: got.length });
            ws.close();
          };
          ws.onerror = () => done({ error: true });`,
        args: [url],
      });
      if (!result.exact) throw new Error(`the wss echo is not byte-exact: ${JSON.stringify(result)}`);
      return `${url}: text and 65,536 bytes echoed exactly`;
    });

    await check('without a token, or with a wrong one, the rooms panel cannot connect and says so', async () => {
      await type('#room-token', '');
      await type('#room-name', 'e2e-guest');
      await type('#room-room', 'lobby');
      await click('#room-join');
      const missing = await until('the status without a token', async () => {
        const shown = await roomsStatus();
        return shown.startsWith('cannot connect') && shown.includes('token missing?') && shown;
      });
      // Signed with another secret: the server refuses it (401), and the
      // browser sees only a failed connection.
      const wrong = jwt(`not-${secret}`, { sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 });
      await type('#room-token', wrong);
      await click('#room-join');
      const refused = await until('the status with a wrong token', async () => {
        const shown = await roomsStatus();
        return shown.startsWith('cannot connect') && shown.includes('token wrong or expired?') && shown;
      });
      if (refused.includes(wrong.split('.')[2])) throw new Error(`the status shows the token: ${refused}`);
      const members = await memberItems();
      if (members.length) throw new Error(`members listed without a connection: ${JSON.stringify(members)}`);
      return `"${missing}"; "${refused}"`;
    });

    await check("with a token the member is the token's sub, whatever the name field says", async () => {
      const token = jwt(secret, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600, rooms: ['lobby'] });
      await type('#room-token', token);
      const field = await run(`return { disabled: document.getElementById('room-name').disabled,
        value: document.getElementById('room-name').value,
        label: document.getElementById('room-name-label').textContent };`);
      if (!field.disabled || !field.label.includes('from the token')) {
        throw new Error(`the name field while a token is typed: ${JSON.stringify(field)}`);
      }
      await click('#room-join');
      await until('alice joined lobby', async () => /^Members of lobby \(\d+\)$/.test((await text('#room-members-title')) || ''));
      const members = await until('alice in the member list, marked as us', async () => {
        const items = await memberItems();
        return items.some((m) => /^alice #\d+ \(you\)$/.test(m)) && items;
      });
      if (members.some((m) => m.startsWith('e2e-guest'))) throw new Error(`the name field's name is listed: ${JSON.stringify(members)}`);
      await chatLine('joined as alice', (l) => l.cls.split(' ').includes('note'));
      const status = await roomsStatus();
      if (status) throw new Error(`the status still says "${status}" once connected`);
      return `name field "${field.value}" (${field.label}); members ${JSON.stringify(members)}`;
    });

    await check("a room outside the token's rooms claim is refused as forbidden, and the connection stays", async () => {
      await type('#room-room', 'e2e-kitchen');
      await click('#room-join');
      const status = await until('the forbidden refusal', async () => {
        const shown = await roomsStatus();
        return shown.startsWith('could not join e2e-kitchen:') && shown.includes('does not allow') && shown;
      });
      await until('the panel back on lobby', async () => /^Members of lobby \(\d+\)$/.test((await text('#room-members-title')) || ''));
      await type('#room-text', 'still connected');
      await click('#room-send');
      await chatLine('still connected', (l) => /^alice #\d+$/.test(l.who));
      const lost = (await chatLines()).filter((l) => l.what.startsWith('connection lost'));
      if (lost.length) throw new Error(`the connection was lost: ${JSON.stringify(lost)}`);
      // The status line too, at the bottom of the panel.
      await run("document.getElementById('room-status').scrollIntoView({ block: 'end' });");
      const shot = screenshotPath.replace(/\.png$/, '-tls.png');
      mkdirSync(dirname(shot), { recursive: true });
      writeFileSync(shot, Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
      return `"${status}"; a message to lobby still arrives; ${shot}`;
    });

    await check('?token= in the page URL prefills the token field', async () => {
      const token = jwt(secret, { sub: 'bob', exp: Math.floor(Date.now() / 1000) + 600 });
      await wd('POST', s('/url'), { url: `${httpsUrl}/?token=${encodeURIComponent(token)}` });
      await until('the page open over TLS', async () => (await state()) === 'open');
      const field = await run(`return { token: document.getElementById('room-token').value,
        disabled: document.getElementById('room-name').disabled };`);
      if (field.token !== token || !field.disabled) throw new Error(`after ?token=: ${JSON.stringify({ ...field, token: field.token.length })}`);
      await click('#room-join');
      const members = await until('bob in the member list', async () => {
        const items = await memberItems();
        return items.some((m) => /^bob #\d+ \(you\)$/.test(m)) && items;
      });
      return JSON.stringify(members);
    });

    await check('a token that expires on an open connection ends it (4001), and the panel says so and does not retry', async () => {
      // exp one second ahead: the server closes at exp plus its 5 s leeway.
      const exp = Math.floor(Date.now() / 1000) + 1;
      const token = jwt(secret, { sub: 'carol', exp });
      await wd('POST', s('/url'), { url: `${httpsUrl}/?token=${encodeURIComponent(token)}` });
      await until('the page open over TLS', async () => (await state()) === 'open');
      await click('#room-join');
      await until('carol in the member list', async () => (await memberItems()).some((m) => /^carol #\d+ \(you\)$/.test(m)));
      const status = await until('the expiry told', async () => {
        const shown = await roomsStatus();
        return shown.includes('the token expired') && shown;
      }, 15_000);
      const late = Date.now() / 1000 - (exp + 5);
      if (late < -1) throw new Error(`closed ${-late} s before exp plus the leeway`);
      // Not retried: the same token would be refused. Two seconds later the
      // status still says why, and no new connection joined.
      await new Promise((r) => setTimeout(r, 2000));
      const after = await roomsStatus();
      if (after !== status) throw new Error(`the status changed after the expiry: "${after}"`);
      const members = await memberItems();
      if (members.some((m) => m.startsWith('carol'))) throw new Error(`carol is listed again: ${JSON.stringify(members)}`);
      const notes = (await chatLines()).filter((l) => l.what.startsWith('connection'));
      if (notes.length !== 1 || notes[0].what !== 'connection closed') throw new Error(`the room's log after the expiry: ${JSON.stringify(notes)}`);
      return `"${status}", ${late.toFixed(1)} s after exp + leeway`;
    });
  } finally {
    await wd('DELETE', s('/window')).catch(() => {});
    await switchTo(main);
  }
}

try {
  await main();
} catch (error) {
  failed += 1;
  results.push(`FAIL setup: ${error.message}`);
  console.error(`e2e: FAIL ${error.stack || error}`);
} finally {
  if (session) await wd('DELETE', `/session/${session}`).catch(() => {});
  if (driver) driver.kill();
  if (staticServer) staticServer.close();
}
console.log(results.join('\n'));
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
