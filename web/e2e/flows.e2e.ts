// End-to-end flows against a running server (PARLEY_E2E_URL). Run: npm run e2e
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { apiFor, BASE, EMAIL, launch, newContext, PASSWORD, shot, SHOTS, WORKSPACE } from './harness';
import { seed as defaultSeed, type SeedContext, type SeedResult } from './seed';

let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let data: SeedResult;
let ws = '';
const RUN = Date.now().toString(36);
const statePath = resolve(SHOTS, 'storage-state.json');

async function loadSeed(): Promise<(c: SeedContext) => Promise<SeedResult>> {
  const mod = process.env.PARLEY_E2E_SEED;
  if (!mod) return defaultSeed;
  const m = (await import(/* @vite-ignore */ resolve(mod))) as { seed: (c: SeedContext) => Promise<SeedResult> };
  return m.seed;
}

/** Flows that need inbound messages skip (with the reason) when the seed could not make them. */
function needInbound(c: TestContext): void {
  if (!data) c.skip('seed did not run');
  if (data.inboundError) {
    console.warn(`skipping: ${data.inboundError}`);
    c.skip(`no inbound messages: ${data.inboundError}`);
  }
}

async function login(p: Page): Promise<void> {
  await p.goto('/');
  await p.getByLabel('Email').fill(EMAIL);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('link', { name: 'Messages' }).first().waitFor();
}

beforeAll(async () => {
  browser = await launch();
  ctx = await newContext(browser);
  page = await ctx.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  rmSync(statePath, { force: true }); // it holds a session cookie
});

describe('Parley operator app', () => {
  it('first-run set-up or login', async () => {
    const setup = (await (await page.request.get(`${BASE}/api/v1/setup`)).json()) as { needed: boolean };
    await page.goto('/');
    if (setup.needed) {
      await page.getByRole('heading', { name: 'Set up Parley' }).waitFor();
      await shot(page, 'setup');
      await page.getByLabel('Workspace name').fill(WORKSPACE);
      await page.getByLabel('Name', { exact: true }).fill('Olga Owner');
      await page.getByLabel('Email').fill(EMAIL);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create workspace' }).click();
      await page.getByRole('link', { name: 'Messages' }).first().waitFor();
    } else {
      await login(page);
    }
    ws = page.url().match(/\/w\/([^/]+)/)?.[1] ?? '';
    expect(ws).not.toBe('');
  });

  it('logout and login', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot(page, 'login');
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await login(page);
    await ctx.storageState({ path: statePath });
  });

  it('seed', async () => {
    const { api, userId } = await apiFor(page);
    data = await (await loadSeed())({ api, ws, userId });
  }, 120_000);

  it('queue shows conversations', async (c) => {
    needInbound(c);
    await page.goto(`/w/${ws}/inbox/all`);
    const row = page.getByRole('link', { name: new RegExp(data.contactName) });
    await row.waitFor({ timeout: 20_000 });
    await expect(row.getAttribute('href')).resolves.toMatch(/\/inbox\/all\/[^/?]+/);
    await shot(page, 'inbox');
  });

  it('keyboard: / search, j + Enter open, r reply', async (c) => {
    needInbound(c);
    const active = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? '');
    await page.keyboard.press('/');
    await expect.poll(active).toBe('Search conversations');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press('j');
    await page.locator('.qrow.focused').waitFor();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/inbox\/all\/[^/?]+/);
    await page.getByRole('log').waitFor();
    await page.keyboard.press('r');
    await expect.poll(active).toBe('Reply');
    await page.goto(`/w/${ws}/inbox/all`);
  });

  it('open thread and send a reply', async (c) => {
    needInbound(c);
    await page.getByRole('link', { name: new RegExp(data.contactName) }).click();
    await page.getByRole('log').getByText(data.inboundText).waitFor();
    await shot(page, 'thread');
    // older history loads on scroll up without moving what the reader looks at:
    // the oldest loaded message stays where it was when the reader reached the top
    const scroller = page.locator('.thread-scroll');
    const count = async () => Number(await scroller.getAttribute('data-count'));
    const before = await count();
    const firstId = (await scroller.getAttribute('data-first')) ?? '';
    const expected = await page.evaluate(() => {
      const el = document.querySelector('.thread-scroll') as HTMLElement;
      const inner = el.querySelector('.thread-items') as HTMLElement;
      el.scrollTop = 0;
      return el.getBoundingClientRect().top + inner.offsetTop;
    });
    if ((await page.getByText('Start of the conversation').count()) === 0) {
      await expect.poll(count, { timeout: 10_000 }).toBeGreaterThan(before);
      await page.waitForTimeout(300);
      const y = await page.evaluate((id) => document.getElementById(`m-${id}`)?.getBoundingClientRect().top ?? null, firstId);
      expect(y).not.toBeNull();
      expect(Math.abs((y as number) - expected)).toBeLessThan(4);
    }
    const reply = page.getByRole('textbox', { name: 'Reply' });
    await reply.fill(`Your order ships today ${RUN}`);
    await reply.press('Enter');
    await page.locator('.bubble.out', { hasText: `Your order ships today ${RUN}` }).waitFor();
    await expect(reply.inputValue()).resolves.toBe('');
  });

  it('private note with a mention', async (c) => {
    needInbound(c);
    await page.getByRole('checkbox', { name: /Private note/ }).check();
    const note = page.getByRole('textbox', { name: 'Private note' });
    await note.pressSequentially(`Check ${RUN} @${data.memberName.slice(0, -1)}`);
    await page.getByRole('button', { name: `Mention ${data.memberName}` }).click();
    await note.press('Enter');
    const bubble = page.locator('.bubble.note', { hasText: `Check ${RUN}` });
    await bubble.waitFor();
    await expect(bubble.textContent()).resolves.toContain(data.memberName);
    await page.getByRole('checkbox', { name: /Private note/ }).uncheck();
  });

  it('assign, label and resolve', async (c) => {
    needInbound(c);
    const assign = page.getByRole('combobox', { name: 'Assign', exact: true });
    await assign.selectOption({ label: data.memberName });
    await expect.poll(() => assign.inputValue()).not.toBe('');
    await page.getByRole('button', { name: /Labels/ }).click();
    await page.getByRole('group', { name: 'Labels' }).locator('label', { hasText: data.labelName }).getByRole('checkbox').check();
    await page.locator('.qrow.selected .label-pill', { hasText: data.labelName }).waitFor();
    await page.getByRole('button', { name: /Labels/ }).click();
    await page.getByRole('button', { name: 'Details' }).click();
    await page.getByRole('complementary', { name: 'Details' }).waitFor();
    await shot(page, 'details');
    const reopen = page.getByRole('button', { name: 'Reopen' });
    if (await reopen.isVisible()) await reopen.click(); // a re-run against the same data
    await page.getByRole('button', { name: /Resolve/ }).click();
    await reopen.waitFor();
    await reopen.click();
    await page.getByRole('button', { name: /Resolve/ }).waitFor();
  });

  it('live: another operator views, types and writes', async (c) => {
    needInbound(c);
    await page.goto(`/w/${ws}/inbox/all`);
    await page.getByRole('link', { name: new RegExp(data.contactName) }).click();
    await page.getByRole('log').getByText(data.inboundText).waitFor();
    const other = await newContext(browser);
    const b = await other.newPage();
    await b.goto('/');
    await b.getByLabel('Email').fill(data.memberEmail);
    await b.getByLabel('Password').fill(data.memberPassword);
    await b.getByRole('button', { name: 'Sign in' }).click();
    await b.getByRole('link', { name: 'Messages' }).first().waitFor();
    const convUrl = new URL(page.url());
    await b.goto(`${convUrl.pathname}${convUrl.search}`);
    await b.getByRole('log').getByText(data.inboundText).waitFor();
    // the first operator sees the second one viewing, then typing (collision warning)
    await page.getByText(`Also viewing: ${data.memberName}`).waitFor({ timeout: 10_000 });
    await b.getByRole('textbox', { name: 'Reply' }).pressSequentially('typing…');
    await page.getByText(`${data.memberName} is replying to this conversation`).waitFor({ timeout: 10_000 });
    await shot(page, 'collision');
    // a note written by the second operator arrives live, without a reload
    await b.getByRole('textbox', { name: 'Reply' }).fill('');
    await b.getByRole('checkbox', { name: /Private note/ }).check();
    const note = b.getByRole('textbox', { name: 'Private note' });
    await note.fill(`Live note ${RUN}`);
    await note.press('Enter');
    await page.locator('.bubble.note', { hasText: `Live note ${RUN}` }).waitFor({ timeout: 10_000 });
    await other.close();
  });

  it('live: a new inbound message moves its conversation to the top with an unread badge', async (c) => {
    needInbound(c);
    if (!data.sendInbound) c.skip('the seed cannot send inbound messages on demand');
    await page.goto(`/w/${ws}/inbox/all`);
    // open another conversation so the contact's one is not being read
    await page.getByRole('link', { name: new RegExp(data.duplicateName) }).first().click();
    await page.getByRole('log').waitFor();
    await page.mouse.move(900, 500); // not over the queue: the order may change
    await data.sendInbound?.(`Live inbound ${RUN}`);
    const first = page.locator('.qrow').first();
    await expect.poll(() => first.textContent(), { timeout: 15_000 }).toContain(`Live inbound ${RUN}`);
    await expect.poll(() => first.getAttribute('aria-label'), { timeout: 5_000 }).toMatch(/unread/);
    await shot(page, 'inbox-live');
  });

  it('contacts: duplicates and merge', async (c) => {
    needInbound(c);
    await page.getByRole('link', { name: 'Contacts' }).click();
    await page.getByRole('searchbox', { name: 'Search contacts' }).fill(data.duplicateName);
    await page.getByRole('link', { name: new RegExp(data.duplicateName) }).first().click();
    await shot(page, 'contacts');
    await page.getByRole('region', { name: 'Possible duplicates' }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Merge' }).click();
    const dialog = page.getByRole('dialog', { name: 'Merge contacts' });
    await dialog.waitFor();
    await shot(page, 'merge');
    await dialog.getByRole('button', { name: 'Merge', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('settings screens', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    await shot(page, 'settings-channels');
    await page.getByRole('link', { name: 'Members' }).click();
    await shot(page, 'settings-members');
    await page.getByRole('link', { name: 'Profile' }).click();
    await shot(page, 'profile');
  });

  it('phone: list → thread → details', async (c) => {
    needInbound(c);
    const phone = await newContext(browser, true, statePath);
    const p = await phone.newPage();
    await p.goto(`/w/${ws}/inbox/all`);
    await p.getByRole('link', { name: new RegExp(data.contactName) }).click();
    await p.getByRole('log').getByText(data.inboundText).waitFor();
    await shot(p, 'thread');
    await p.getByRole('button', { name: 'Details' }).click();
    await p.getByRole('complementary', { name: 'Details' }).waitFor();
    await shot(p, 'details');
    await p.getByRole('button', { name: 'Back' }).click();
    await p.getByRole('textbox', { name: 'Reply' }).waitFor();
    await p.getByRole('button', { name: 'Back' }).click();
    await p.getByRole('searchbox', { name: 'Search conversations' }).waitFor();
    await shot(p, 'inbox');
    await p.goto(`/w/${ws}/contacts`);
    await shot(p, 'contacts');
    await phone.close();
  });

  it('switch to Russian', async () => {
    await page.goto(`/w/${ws}/inbox/mine`);
    await page.getByRole('combobox', { name: 'Language' }).first().selectOption('ru');
    await page.getByRole('link', { name: 'Сообщения' }).first().waitFor();
    await shot(page, 'inbox-ru');
    await page.getByRole('combobox', { name: 'Язык' }).first().selectOption('en');
  });
});
