// Web performance figures for the operator app, measured in Debian's Chromium (playwright-core):
//  1. JS bundle size, gzip (web/dist/assets/*.js: the entry chunk and the total);
//  2. cold load: fresh context (empty cache), logged in by cookie, `/` → the queue's rows rendered
//     and a keypress handled (time to interactive), plus FCP and LCP; N runs, median and worst;
//  3. scrolling a 5,000-message thread (signed inbound webhooks on an `api` channel): wheel up
//     through history (older pages load as in the app) and back down, rAF frame times, long tasks,
//     and whether the content jumped when older pages were prepended.
// Run: PARLEY_E2E_URL=http://127.0.0.1:8080 npm run perf   (or scripts/web-perf.sh, which starts a server)
import { chromium, request, type APIRequestContext, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const env = process.env;
const BASE = (env.PARLEY_E2E_URL ?? '').replace(/\/$/, '');
const EMAIL = env.PARLEY_E2E_EMAIL ?? 'owner@example.com';
const PASSWORD = env.PARLEY_E2E_PASSWORD ?? 'correct-horse-battery';
const WORKSPACE = env.PARLEY_E2E_WORKSPACE ?? 'Acme Support';
const CHROMIUM = env.PARLEY_E2E_CHROMIUM ?? '/usr/bin/chromium';
const RUNS = Number(env.PERF_RUNS ?? 5);
const THREAD_SIZE = Number(env.PERF_THREAD_SIZE ?? 5000);
const QUEUE_SIZE = Number(env.PERF_QUEUE_SIZE ?? 30);
const SCROLL_UP_MS = Number(env.PERF_SCROLL_UP_MS ?? 8000);
const SCROLL_DOWN_MS = Number(env.PERF_SCROLL_DOWN_MS ?? 4000);
const WHEEL_STEP = Number(env.PERF_WHEEL_STEP ?? 120); // px per wheel event (one notch ≈ 100–120)
const WHEEL_EVERY_MS = Number(env.PERF_WHEEL_EVERY_MS ?? 16);
const CONCURRENCY = Number(env.PERF_CONCURRENCY ?? 16);
const FRAME_MS = 1000 / 60;
const JUMP_PX = 48; // content displaced by more than this beyond what the wheel asked for = a jump
const SECRET = 'perf-hmac-secret';
const THREAD_CONTACT = `Perf Scroll ${THREAD_SIZE}`;
const DESKTOP = { width: 1440, height: 900 };
const here = dirname(fileURLToPath(import.meta.url));

export interface Stats {
  n: number;
  median: number;
  p95: number;
  p99: number;
  worst: number;
}

export interface LoadRun {
  tti: number; // navigation start → first keypress whose effect (a focused queue row) is on screen
  firstRow: number; // navigation start → first queue row rendered
  inputDelay: number; // that keypress → its effect on screen
  presses: number; // keypresses sent until one was handled
  fcp: number;
  lcp: number;
  domContentLoaded: number;
  jsTransfer: number; // bytes of script over the wire
  longTasks: number;
}

export interface IdleFrames {
  frames: number;
  frame: Stats;
  dropped: number;
}

export interface Report {
  bundle: { files: { name: string; raw: number; gzip: number }[]; main: string; mainGzip: number; totalGzip: number; totalRaw: number; cssGzip: number };
  load: { runs: LoadRun[]; tti: Stats; firstRow: Stats; fcp: Stats; lcp: Stats; inputDelay: Stats };
  scroll: {
    messages: number;
    loadedAtStart: number;
    loadedAtEnd: number;
    prepends: number;
    durationMs: number;
    frames: number;
    frame: Stats;
    dropped: number; // frames longer than one 60 Hz interval (16.7 ms)
    missed: number; // 60 Hz vsyncs that produced no frame
    longTasks: { count: number; totalMs: number; worstMs: number };
    jumps: number; // prepends after which the content moved > JUMP_PX more than the wheel asked for
    unmeasuredPrepends: number; // too close to the end, or the anchor message was lost
    worstShiftAtPrependPx: number;
    totalDriftPx: number; // content displacement the wheel did not ask for, over the whole run
    scrolledPx: number; // distance the wheel scrolled
    topStallFrames: number; // frames spent pinned at scrollTop 0 waiting for older history
    idle?: IdleFrames; // 2 s of the open thread with no input, just before scrolling
  };
}

// ---------- helpers ----------

function stats(xs: number[]): Stats {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const q = (p: number) => (s.length ? (s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] as number) : NaN);
  return { n: s.length, median: q(0.5), p95: q(0.95), p99: q(0.99), worst: s.length ? (s[s.length - 1] as number) : NaN };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
const kb = (x: number) => `${(x / 1024).toFixed(1)} KiB`;

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

// ---------- 1. bundle ----------

export function bundleSizes(dist = resolve(here, '../dist')): Report['bundle'] {
  const html = readFileSync(resolve(dist, 'index.html'), 'utf8');
  const main = /<script[^>]+src="\/assets\/([^"]+\.js)"/.exec(html)?.[1] ?? '';
  const assets = resolve(dist, 'assets');
  const files = readdirSync(assets)
    .filter((f) => f.endsWith('.js'))
    .map((name) => {
      const buf = readFileSync(resolve(assets, name));
      return { name, raw: buf.length, gzip: gzipSync(buf).length };
    })
    .sort((a, b) => b.gzip - a.gzip);
  const css = readdirSync(assets)
    .filter((f) => f.endsWith('.css'))
    .reduce((n, f) => n + gzipSync(readFileSync(resolve(assets, f))).length, 0);
  if (!files.length) throw new Error(`no JS in ${assets}: run npm run build`);
  return {
    files,
    main,
    mainGzip: files.find((f) => f.name === main)?.gzip ?? NaN,
    totalGzip: files.reduce((n, f) => n + f.gzip, 0),
    totalRaw: files.reduce((n, f) => n + f.raw, 0),
    cssGzip: css,
  };
}

// ---------- session and seed ----------

interface Session {
  req: APIRequestContext;
  csrf: string;
  ws: string;
  userId: string;
}

async function call<T>(s: Pick<Session, 'req' | 'csrf'>, method: string, path: string, body?: unknown): Promise<T> {
  const res = await s.req.fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
    data: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok()) throw new Error(`${method} ${path} → ${res.status()}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function login(): Promise<Session> {
  const req = await request.newContext({ baseURL: BASE });
  const setup = (await (await req.get(`${BASE}/api/v1/setup`)).json()) as { needed: boolean };
  if (setup.needed) {
    await call({ req, csrf: '' }, 'POST', '/setup', { workspace: WORKSPACE, name: 'Olga Owner', email: EMAIL, password: PASSWORD });
  }
  const me = await call<{ user: { id: string }; workspaces: { id: string }[]; csrf_token: string }>({ req, csrf: '' }, 'POST', '/auth/login', {
    email: EMAIL,
    password: PASSWORD,
  });
  const ws = me.workspaces[0]?.id;
  if (!ws) throw new Error('the user has no workspace');
  return { req, csrf: me.csrf_token, ws, userId: me.user.id };
}

async function webhook(channelId: string, body: Record<string, unknown>): Promise<void> {
  const raw = JSON.stringify(body);
  const sig = createHmac('sha256', SECRET).update(raw).digest('hex');
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${BASE}/webhooks/${channelId}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Parley-Signature': `sha256=${sig}` },
      body: raw,
    });
    if (res.ok) return;
    const text = await res.text();
    if (attempt < 5 && (res.status === 429 || res.status >= 500)) {
      await sleep(200 * (attempt + 1));
      continue;
    }
    throw new Error(`webhook → ${res.status}: ${text}`);
  }
}

interface Conv {
  id: string;
  assignee_id?: string | null;
}

async function findConv(s: Session, name: string): Promise<Conv | undefined> {
  const page = await call<{ items: (Conv & { contact?: { name?: string } })[] | null }>(
    s,
    'GET',
    `/workspaces/${s.ws}/conversations?view=all&limit=5&q=${encodeURIComponent(name)}`,
  );
  return (page.items ?? []).find((c) => c.contact?.name === name);
}

async function countMessages(s: Session, convId: string): Promise<number> {
  let n = 0;
  let before = '';
  for (;;) {
    const page = await call<{ items: unknown[] | null; next_cursor?: string | null }>(
      s,
      'GET',
      `/workspaces/${s.ws}/conversations/${convId}/messages?limit=100${before ? `&before=${encodeURIComponent(before)}` : ''}`,
    );
    n += page.items?.length ?? 0;
    if (!page.next_cursor) return n;
    before = page.next_cursor;
  }
}

/** Text of thread message i: a unique marker plus a length that varies like a real chat. */
function messageText(i: number): string {
  const words = ['order', 'delivery', 'refund', 'tracking', 'invoice', 'address', 'courier', 'package', 'support', 'thanks'];
  const n = 3 + ((i * 37) % 41);
  const body = Array.from({ length: n }, (_, k) => words[(i + k * 7) % words.length]).join(' ');
  return i % 17 === 0 ? `[perf ${i}] ${body}\nline two\nline three of a longer note` : `[perf ${i}] ${body}`;
}

async function seed(s: Session): Promise<{ convId: string; seeded: boolean; seedMs: number }> {
  const p = (path: string) => `/workspaces/${s.ws}${path}`;
  const assign = (id: string) => call(s, 'PATCH', p(`/conversations/${id}`), { assignee_id: s.userId });
  const existing = await findConv(s, THREAD_CONTACT);
  if (existing && (await countMessages(s, existing.id)) >= THREAD_SIZE) {
    if (existing.assignee_id !== s.userId) await assign(existing.id);
    return { convId: existing.id, seeded: false, seedMs: 0 };
  }
  const t0 = Date.now();
  const run = Date.now().toString(36);
  const ch = await call<{ id: string }>(s, 'POST', p('/channels'), {
    kind: 'api',
    name: `Perf ${run}`,
    config: { callback_url: 'http://127.0.0.1:9/perf-callback' },
    secrets: { hmac_secret: SECRET },
  });
  const now = Date.now();
  const contact = (id: string, name: string) => ({ identifier: id, name, email: `${id}@example.com`, phone: '' });
  // the queue: QUEUE_SIZE other conversations with two messages each
  const queue = Array.from({ length: QUEUE_SIZE * 2 }, (_, i) => i);
  await pool(queue, CONCURRENCY, (i) =>
    webhook(ch.id, {
      external_id: `perf-${run}-q-${i}`,
      contact: contact(`perf-q-${run}-${i >> 1}`, `Perf Customer ${i >> 1} ${run}`),
      text: messageText(i),
      attachments: [],
      timestamp: new Date(now - 3_600_000 + i * 1000).toISOString(),
    }),
  );
  // the long thread, one inbound message a minute up to now
  const thread = Array.from({ length: THREAD_SIZE }, (_, i) => i);
  await pool(thread, CONCURRENCY, (i) =>
    webhook(ch.id, {
      external_id: `perf-${run}-t-${i}`,
      contact: contact(`perf-thread-${run}`, THREAD_CONTACT),
      text: messageText(i),
      attachments: [],
      timestamp: new Date(now - (THREAD_SIZE - i) * 60_000).toISOString(),
    }),
  );
  // ingest is asynchronous: wait until the thread holds every message
  const deadline = Date.now() + 90_000;
  let conv: Conv | undefined;
  for (;;) {
    conv ??= await findConv(s, THREAD_CONTACT);
    const n = conv ? await countMessages(s, conv.id) : 0;
    if (conv && n >= THREAD_SIZE) break;
    if (Date.now() > deadline) throw new Error(`thread has ${n}/${THREAD_SIZE} messages after 90s`);
    await sleep(1000);
  }
  // everything goes to "mine" (the view `/` opens)
  const all = await call<{ items: Conv[] | null }>(s, 'GET', p(`/conversations?view=all&channel=${ch.id}&limit=100`));
  await pool(all.items ?? [], 4, (c) => assign(c.id).then(() => undefined));
  return { convId: conv.id, seeded: true, seedMs: Date.now() - t0 };
}

// ---------- browser ----------

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

type StorageState = Awaited<ReturnType<APIRequestContext['storageState']>>;

async function freshContext(browser: Browser, state: StorageState): Promise<BrowserContext> {
  return browser.newContext({ baseURL: BASE, viewport: DESKTOP, deviceScaleFactor: 1, locale: 'en-US', storageState: state });
}

// In-page observers for the cold load (runs before the app's own scripts).
const LOAD_PROBE = `(() => {
  const P = (window.__perf = { fcp: NaN, lcp: NaN, firstRow: NaN, focused: NaN, focusedDom: NaN, keys: [], longTasks: 0 });
  const obs = (type, fn) => { try { new PerformanceObserver((l) => l.getEntries().forEach(fn)).observe({ type, buffered: true }); } catch (e) {} };
  obs('paint', (e) => { if (e.name === 'first-contentful-paint') P.fcp = e.startTime; });
  obs('largest-contentful-paint', (e) => { if (!(P.keys.length)) P.lcp = e.startTime; });
  obs('longtask', () => { P.longTasks++; });
  addEventListener('keydown', (e) => P.keys.push(e.timeStamp), true);
  const mo = new MutationObserver(() => {
    if (Number.isNaN(P.firstRow) && !P.rowSeen && document.querySelector('.qrow')) {
      P.rowSeen = true;
      requestAnimationFrame(() => { P.firstRow = performance.now(); });
    }
    if (!P.focusSeen && document.querySelector('.qrow.focused')) {
      P.focusSeen = true; P.focusedDom = performance.now();
      requestAnimationFrame(() => { P.focused = performance.now(); });
      mo.disconnect();
    }
  });
  mo.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
})();`;

interface LoadProbe {
  fcp: number;
  lcp: number;
  firstRow: number;
  focused: number;
  focusedDom: number;
  keys: number[];
  longTasks: number;
}

async function coldLoad(browser: Browser, state: StorageState): Promise<LoadRun> {
  const ctx = await freshContext(browser, state);
  try {
    await ctx.addInitScript(LOAD_PROBE);
    const page = await ctx.newPage();
    await page.goto('/', { waitUntil: 'commit' });
    await page.locator('.qrow').first().waitFor({ state: 'visible', timeout: 30_000 });
    // press j (focus the next row) until the app answers; the first answered press is "interactive"
    let presses = 0;
    const deadline = Date.now() + 15_000;
    while (!(await page.evaluate(() => !Number.isNaN((window as unknown as { __perf: LoadProbe }).__perf.focused)))) {
      if (Date.now() > deadline) throw new Error('the queue never answered a keypress');
      if (!(await page.evaluate(() => (window as unknown as { __perf: { focusSeen?: boolean } }).__perf.focusSeen))) {
        await page.keyboard.press('j');
        presses++;
      }
      await sleep(10);
    }
    const p = await page.evaluate(() => (window as unknown as { __perf: LoadProbe }).__perf);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
      const js = (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
        .filter((r) => r.initiatorType === 'script' || r.name.endsWith('.js'))
        .reduce((s, r) => s + r.transferSize, 0);
      return { dcl: n?.domContentLoadedEventEnd ?? NaN, js };
    });
    const key = [...p.keys].reverse().find((k) => k <= p.focusedDom) ?? NaN;
    return {
      tti: p.focused,
      firstRow: p.firstRow,
      inputDelay: p.focused - key,
      presses,
      fcp: p.fcp,
      lcp: p.lcp,
      domContentLoaded: nav.dcl,
      jsTransfer: nav.js,
      longTasks: p.longTasks,
    };
  } finally {
    await ctx.close();
  }
}

// ---------- 3. scroll ----------

interface Frame {
  t: number;
  dt: number;
  st: number; // scrollTop
  max: number; // scrollHeight - clientHeight
  count: number; // messages loaded (data-count)
  wheel: number; // wheel deltaY delivered since the previous frame
  d: number | null; // how far the previous frame's anchor message moved on screen (px, + = down)
  fetching: boolean;
}

const SCROLL_PROBE = `(() => {
  const el = document.querySelector('.thread-scroll');
  const R = (window.__scroll = { frames: [], longTasks: [], stop: false });
  let wheel = 0;
  el.addEventListener('wheel', (e) => { wheel += e.deltaY; }, { passive: true, capture: true });
  new PerformanceObserver((l) => l.getEntries().forEach((e) => R.longTasks.push([e.startTime, e.duration]))).observe({ type: 'longtask' });
  const nums = new WeakMap();
  const num = (row) => {
    let n = nums.get(row);
    if (n === undefined) { const m = /\\[perf (\\d+)\\]/.exec(row.textContent || ''); n = m ? +m[1] : -1; if (n >= 0) nums.set(row, n); }
    return n;
  };
  let prev = null, last = performance.now();
  const tick = (now) => {
    if (R.stop) return;
    const box = el.getBoundingClientRect();
    const mid = box.top + box.height / 2;
    let d = null, cur = null;
    for (const row of el.querySelectorAll('.thread-items > div')) {
      const n = num(row);
      if (n < 0) continue;
      const r = row.getBoundingClientRect();
      if (prev && n === prev.n) d = r.top - prev.top;
      if (r.bottom < box.top || r.top > box.bottom) continue;
      if (!cur || Math.abs(r.top - mid) < Math.abs(cur.top - mid)) cur = { n, top: r.top };
    }
    const top = el.querySelector('.thread-top');
    R.frames.push({ t: now, dt: now - last, st: el.scrollTop, max: el.scrollHeight - el.clientHeight, count: +(el.dataset.count || 0),
      wheel, d, fetching: !!(top && top.textContent && top.textContent.trim()) });
    wheel = 0; last = now; prev = cur;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame((now) => { last = now; requestAnimationFrame(tick); });
})();`;

async function scrollThread(browser: Browser, state: StorageState, ws: string, convId: string): Promise<Report['scroll'] & { idle: IdleFrames }> {
  const ctx = await freshContext(browser, state);
  try {
    const page: Page = await ctx.newPage();
    await page.goto(`/w/${ws}/inbox/mine/${convId}`);
    const scroller = page.locator('.thread-scroll');
    await page.getByText(`[perf ${THREAD_SIZE - 1}]`).first().waitFor({ state: 'visible', timeout: 30_000 });
    await sleep(1000); // let the first page settle (measurements, read receipt, viewers)
    const loadedAtStart = Number(await scroller.getAttribute('data-count'));
    const box = await scroller.boundingBox();
    if (!box) throw new Error('no thread on screen');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.evaluate(SCROLL_PROBE);
    // idle baseline: frames with nothing happening (how much of the jank is the machine itself)
    await sleep(2000);
    const idle = await page.evaluate(() => (window as unknown as { __scroll: { frames: Frame[] } }).__scroll.frames.length);
    const wheelFor = async (dy: number, dur: number) => {
      const end = Date.now() + dur;
      while (Date.now() < end) {
        await page.mouse.wheel(0, dy);
        await sleep(WHEEL_EVERY_MS);
      }
    };
    await wheelFor(-WHEEL_STEP, SCROLL_UP_MS);
    await wheelFor(WHEEL_STEP, SCROLL_DOWN_MS);
    await sleep(300);
    const r = await page.evaluate(() => {
      const s = (window as unknown as { __scroll: { frames: Frame[]; longTasks: [number, number][]; stop: boolean } }).__scroll;
      s.stop = true;
      return { frames: s.frames, longTasks: s.longTasks };
    });
    if (env.PERF_FRAMES_OUT) writeFileSync(env.PERF_FRAMES_OUT, JSON.stringify(r.frames));
    const base = r.frames.slice(1, idle).map((f) => f.dt);
    const scrollStart = r.frames[idle]?.t ?? 0;
    return {
      ...analyseScroll(r.frames.slice(idle - 1), r.longTasks.filter(([t]) => t >= scrollStart), loadedAtStart),
      idle: { frames: base.length, frame: stats(base), dropped: base.filter((dt) => dt > FRAME_MS + 0.5).length },
    };
  } finally {
    await ctx.close();
  }
}

/**
 * Jump detection. Each frame, the anchor message (nearest the viewport's middle in the previous
 * frame) should move on screen by what the wheel asked for, clamped at the ends of the scroll range.
 * The running sum of (moved − asked) is the drift: a wheel notch applied a frame late makes a
 * transient of one step that cancels, while content shifting under the reader (a prepend that is
 * not anchored, or a wheel notch undone by re-anchoring) leaves a lasting step. A prepend counts
 * as a jump when the settled drift after it (median of frames +30…+45) differs from the settled
 * drift before it (median of frames −12…−2) by more than JUMP_PX.
 */
export function analyseScroll(frames: Frame[], longTasks: [number, number][], loadedAtStart: number): Report['scroll'] {
  const fs = frames.slice(1); // the first delta starts at the probe, not a real frame boundary
  const dts = fs.map((f) => f.dt);
  const missed = dts.reduce((n, dt) => n + Math.max(0, Math.round(dt / FRAME_MS) - 1), 0);
  const prependAt: number[] = [];
  for (let i = 1; i < frames.length; i++) if ((frames[i] as Frame).count > (frames[i - 1] as Frame).count) prependAt.push(i);
  const drift: number[] = [0];
  const lost: boolean[] = [false]; // anchor not found: the drift is unknown from there on
  let scrolled = 0;
  for (let k = 1; k < frames.length; k++) {
    const f = frames[k] as Frame;
    const prev = frames[k - 1] as Frame;
    // content moves opposite to the wheel, no further than the scroll range allows
    const asked = f.wheel < 0 ? Math.min(-f.wheel, prev.st) : -Math.min(f.wheel, Math.max(0, prev.max - prev.st));
    scrolled += Math.abs(asked);
    drift[k] = (drift[k - 1] as number) + (f.d ?? 0) - asked;
    lost[k] = f.d === null;
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length ? (s[Math.floor(s.length / 2)] as number) : NaN;
  };
  let jumps = 0;
  let unmeasured = 0;
  let worst = 0;
  for (const p of prependAt) {
    const lo = Math.max(1, p - 12);
    const hi = Math.min(frames.length - 1, p + 45);
    if (hi - p < 30 || lost.slice(lo, hi + 1).some(Boolean)) {
      unmeasured++;
      continue;
    }
    const shift = Math.abs(median(drift.slice(p + 30, hi + 1)) - median(drift.slice(lo, p - 1)));
    worst = Math.max(worst, shift);
    if (shift > JUMP_PX) jumps++;
  }
  const settledEnd = median(drift.slice(-15));
  const last = frames[frames.length - 1];
  return {
    messages: THREAD_SIZE,
    loadedAtStart,
    loadedAtEnd: last?.count ?? 0,
    prepends: prependAt.length,
    durationMs: fs.length ? (last as Frame).t - (frames[0] as Frame).t : 0,
    frames: fs.length,
    frame: stats(dts),
    dropped: dts.filter((dt) => dt > FRAME_MS + 0.5).length,
    missed,
    longTasks: { count: longTasks.length, totalMs: longTasks.reduce((s, [, d]) => s + d, 0), worstMs: Math.max(0, ...longTasks.map(([, d]) => d)) },
    jumps,
    unmeasuredPrepends: unmeasured,
    worstShiftAtPrependPx: worst,
    totalDriftPx: lost.some(Boolean) ? NaN : settledEnd,
    scrolledPx: scrolled,
    topStallFrames: fs.filter((f) => f.st <= 0 && f.fetching).length,
  };
}

// ---------- report ----------

function print(r: Report, extra: { seeded: boolean; seedMs: number }): void {
  const b = r.bundle;
  const l = r.load;
  const s = r.scroll;
  const line = (label: string, x: Stats) => `  ${label.padEnd(26)} median ${ms(x.median).padStart(10)}   worst ${ms(x.worst).padStart(10)}`;
  const out = [
    '',
    `Parley web performance — ${BASE} — Chromium ${CHROMIUM}, ${DESKTOP.width}×${DESKTOP.height}`,
    '',
    '1. JS bundle (gzip, zlib default level)',
    `  main chunk ${b.main}: ${kb(b.mainGzip)} gzip`,
    `  all JS (${b.files.length} files): ${kb(b.totalGzip)} gzip, ${kb(b.totalRaw)} raw; CSS ${kb(b.cssGzip)} gzip`,
    ...b.files.map((f) => `    ${f.name.padEnd(28)} ${kb(f.gzip).padStart(10)} gzip ${kb(f.raw).padStart(10)} raw`),
    '',
    `2. Cold load of / (fresh context, empty cache, session cookie), ${l.runs.length} runs`,
    line('time to interactive', l.tti),
    line('first queue row rendered', l.firstRow),
    line('FCP', l.fcp),
    line('LCP', l.lcp),
    line('keypress → effect', l.inputDelay),
    `  per run: ${l.runs.map((x) => `TTI ${x.tti.toFixed(0)} (${x.presses} press${x.presses === 1 ? '' : 'es'}, ${x.longTasks} long tasks, JS ${kb(x.jsTransfer)} transferred)`).join('; ')}`,
    '',
    `3. Scroll a ${s.messages}-message thread (wheel ${WHEEL_STEP}px/${WHEEL_EVERY_MS}ms: up ${SCROLL_UP_MS} ms, down ${SCROLL_DOWN_MS} ms)${extra.seeded ? `; seeded in ${(extra.seedMs / 1000).toFixed(1)} s` : '; reused seeded thread'}`,
    `  frames measured ${s.frames} over ${(s.durationMs / 1000).toFixed(1)} s; messages loaded ${s.loadedAtStart} → ${s.loadedAtEnd} (${s.prepends} older pages prepended)`,
    `  frame time median ${ms(s.frame.median)}, p95 ${ms(s.frame.p95)}, p99 ${ms(s.frame.p99)}, worst ${ms(s.frame.worst)}`,
    `  dropped frames (>16.7 ms) ${s.dropped} of ${s.frames} (${((100 * s.dropped) / Math.max(1, s.frames)).toFixed(1)}%); missed vsyncs ${s.missed}`,
    ...(s.idle
      ? [`  idle baseline (2 s, no input): frame median ${ms(s.idle.frame.median)}, p95 ${ms(s.idle.frame.p95)}, worst ${ms(s.idle.frame.worst)}, dropped ${s.idle.dropped} of ${s.idle.frames}`]
      : []),
    `  long tasks ${s.longTasks.count} (total ${ms(s.longTasks.totalMs)}, worst ${ms(s.longTasks.worstMs)})`,
    `  wheel scrolled ${(s.scrolledPx / 1000).toFixed(1)}k px (${((s.scrolledPx / Math.max(1, s.durationMs)) * 1000).toFixed(0)} px/s); frames pinned at the top waiting for history ${s.topStallFrames}`,
    `  scroll position jumped when older pages loaded: ${s.jumps > 0 ? `YES, after ${s.jumps} of ${s.prepends - s.unmeasuredPrepends} prepends` : `no (0 of ${s.prepends - s.unmeasuredPrepends} prepends)`}; worst shift at a prepend ${s.worstShiftAtPrependPx.toFixed(0)} px; unrequested drift over the run ${Number.isFinite(s.totalDriftPx) ? `${s.totalDriftPx.toFixed(0)} px` : 'n/a (anchor lost)'}`,
    '',
  ];
  console.log(out.join('\n'));
  console.log(`PERF_JSON ${JSON.stringify(r)}`);
  if (env.PERF_OUT) writeFileSync(env.PERF_OUT, JSON.stringify(r, null, 2));
}

export async function measure(): Promise<Report> {
  if (!BASE) throw new Error('PARLEY_E2E_URL is not set: start a server (or use scripts/web-perf.sh)');
  const bundle = bundleSizes();
  const s = await login();
  const seeded = await seed(s);
  const state = await s.req.storageState();
  const browser = await launch();
  try {
    const runs: LoadRun[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await coldLoad(browser, state));
    const scroll = await scrollThread(browser, state, s.ws, seeded.convId);
    const report: Report = {
      bundle,
      load: {
        runs,
        tti: stats(runs.map((r) => r.tti)),
        firstRow: stats(runs.map((r) => r.firstRow)),
        fcp: stats(runs.map((r) => r.fcp)),
        lcp: stats(runs.map((r) => r.lcp)),
        inputDelay: stats(runs.map((r) => r.inputDelay)),
      },
      scroll,
    };
    print(report, seeded);
    return report;
  } finally {
    await browser.close();
    await s.req.dispose();
  }
}
