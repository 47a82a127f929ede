// Shared plumbing for the end-to-end flows: a Chromium from the OS (playwright-core,
// no browser download), an API helper with the session cookie + CSRF token, screenshots.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BASE = (process.env.PARLEY_E2E_URL ?? '').replace(/\/$/, '');
export const EMAIL = process.env.PARLEY_E2E_EMAIL ?? 'owner@example.com';
export const PASSWORD = process.env.PARLEY_E2E_PASSWORD ?? 'correct-horse-battery';
export const WORKSPACE = process.env.PARLEY_E2E_WORKSPACE ?? 'Acme Support';
export const CHROMIUM = process.env.PARLEY_E2E_CHROMIUM ?? '/usr/bin/chromium';

const here = dirname(fileURLToPath(import.meta.url));
export const SHOTS = resolve(here, 'screenshots');

export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 390, height: 844 };

export async function launch(): Promise<Browser> {
  if (!BASE) throw new Error('PARLEY_E2E_URL is not set: start a server (make run) and export PARLEY_E2E_URL=http://127.0.0.1:8080');
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

export async function newContext(browser: Browser, phone = false, storageState?: string): Promise<BrowserContext> {
  return browser.newContext({
    baseURL: BASE,
    viewport: phone ? PHONE : DESKTOP,
    deviceScaleFactor: 1,
    isMobile: phone,
    hasTouch: phone,
    locale: 'en-US',
    storageState: storageState as never,
  });
}

export async function shot(page: Page, name: string): Promise<void> {
  const vp = page.viewportSize();
  const suffix = vp && vp.width < 600 ? 'phone' : 'desktop';
  await page.screenshot({ path: resolve(SHOTS, `${name}-${suffix}.png`) });
}

/** JSON API client riding on a logged-in page's cookies; adds the CSRF token to unsafe requests. */
export class Api {
  constructor(
    private readonly page: Page,
    private readonly csrf: string,
  ) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.page.request.fetch(`${BASE}/api/v1${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf },
      data: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok()) throw new Error(`${method} ${path} → ${res.status()}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Posts a signed inbound message to an `api` channel's webhook (see API.md). */
  async inbound(channelId: string, secret: string, body: Record<string, unknown>): Promise<void> {
    const raw = JSON.stringify(body);
    const sig = createHmac('sha256', secret).update(raw).digest('hex');
    const res = await this.page.request.fetch(`${BASE}/webhooks/${channelId}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Parley-Signature': `sha256=${sig}` },
      data: raw,
    });
    if (!res.ok()) throw new Error(`webhook → ${res.status()}: ${await res.text()}`);
  }
}

export async function apiFor(page: Page): Promise<{ api: Api; ws: string; userId: string }> {
  const res = await page.request.get(`${BASE}/api/v1/me`);
  if (!res.ok()) throw new Error(`/me → ${res.status()}`);
  const me = (await res.json()) as { user: { id: string }; workspaces: { id: string }[]; csrf_token: string };
  const ws = me.workspaces[0]?.id;
  if (!ws) throw new Error('no workspace');
  return { api: new Api(page, me.csrf_token), ws, userId: me.user.id };
}
