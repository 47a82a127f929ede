// End-to-end flows against a running server (PARLEY_E2E_URL). Run: npm run e2e
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { request, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { apiFor, BASE, EMAIL, launch, newContext, PASSWORD, shot, SHOTS, WORKSPACE } from './harness';
import { seed as defaultSeed, type SeedContext, type SeedResult } from './seed';
import { NO_SIM, seedSim, SIM, Sim, type SimSeed } from './sim';

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

/** Flows that need inbound messages skip (with the reason) only when a plugged-in seed declares it
 *  cannot make them (inboundError); the default seed throws instead, failing the 'seed' flow. */
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

// a failed flow leaves a screenshot of every open page: failure-<test>-<n>.png
afterEach(async (c) => {
  if (c.task.result?.state !== 'fail' || !browser) return;
  const slug = c.task.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 60);
  const pages = browser.contexts().flatMap((x) => x.pages());
  for (const [i, p] of pages.entries()) await p.screenshot({ path: resolve(SHOTS, `failure-${slug}-${i}.png`) }).catch(() => undefined);
});

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
    // the seed makes more messages than one page holds: the start is not loaded yet
    // (checked before scrolling, so the anchor check below always runs)
    await expect(page.getByText('Start of the conversation').count()).resolves.toBe(0);
    const expected = await page.evaluate(() => {
      const el = document.querySelector('.thread-scroll') as HTMLElement;
      const inner = el.querySelector('.thread-items') as HTMLElement;
      el.scrollTop = 0;
      return el.getBoundingClientRect().top + inner.offsetTop;
    });
    await expect.poll(count, { timeout: 10_000 }).toBeGreaterThan(before);
    await page.waitForTimeout(300);
    const y = await page.evaluate((id) => document.getElementById(`m-${id}`)?.getBoundingClientRect().top ?? null, firstId);
    expect(y).not.toBeNull();
    expect(Math.abs((y as number) - expected)).toBeLessThan(4);
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
    // the checkbox updates optimistically (useConversationMutation); the poll also covers a rollback on error
    const labelBox = page.getByRole('group', { name: 'Labels' }).locator('label', { hasText: data.labelName }).getByRole('checkbox');
    if (!(await labelBox.isChecked())) await labelBox.click();
    await expect.poll(() => labelBox.isChecked(), { timeout: 10_000 }).toBe(true);
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
    // typing "on" goes over b's socket once, then again every 3s while b keeps typing:
    // keep typing until it shows (a frame sent while b's socket reconnects is lost)
    const bReply = b.getByRole('textbox', { name: 'Reply' });
    const collision = page.getByText(`${data.memberName} is replying to this conversation`);
    await bReply.pressSequentially('typing…');
    for (let i = 0; !(await collision.isVisible()); i++) {
      if (i === 5) throw new Error('the typing operator was not shown within 10s of typing');
      await collision.waitFor({ timeout: 2_000 }).catch(() => bReply.press('x'));
    }
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

// Flows through the provider simulator: real WhatsApp/Telegram adapters, signed
// webhooks in, Graph/Bot API calls out, status webhooks back.
describe('channels through the provider simulator', () => {
  let sim: Sim;
  let chans: SimSeed | undefined;
  const customer = { from: `1555${(Date.now() % 1e7).toString().padStart(7, '0')}`, name: `Ana Lima ${RUN}` };

  function needSim(c: TestContext): void {
    if (!SIM) {
      console.warn(`skipping: ${NO_SIM}`);
      c.skip(NO_SIM);
    }
    if (!ws) c.skip('not logged in');
    if (!chans) c.skip('the simulator seed did not run');
  }

  /** The status shown by the ticks of a bubble (queued, sent, delivered, read, failed). */
  const tickStatus = async (bubble: Locator) => {
    const ticks = bubble.locator('.ticks');
    if ((await ticks.count()) === 0) return 'none';
    return ((await ticks.getAttribute('class', { timeout: 2_000 })) ?? '').match(/ticks-(\w+)/)?.[1] ?? '';
  };

  it('simulator seed: WhatsApp and Telegram channels', async (c) => {
    if (!SIM) c.skip(NO_SIM);
    if (!ws) c.skip('not logged in');
    const { api } = await apiFor(page);
    sim = new Sim(page.request);
    chans = await seedSim(api, ws, sim, RUN);
  });

  it('WhatsApp: a customer message appears in the queue and in the open thread live', async (c) => {
    needSim(c);
    await page.goto(`/w/${ws}/inbox/all`);
    await page.getByRole('searchbox', { name: 'Search conversations' }).waitFor();
    await page.evaluate(() => ((window as unknown as { e2eNoReload: boolean }).e2eNoReload = true));
    await page.mouse.move(900, 500);
    const id = chans!.whatsapp.id;
    await sim.whatsapp(id, { ...customer, text: `Olá! Where is my order ${RUN}? 📦` });
    const row = page.getByRole('link', { name: new RegExp(customer.name) });
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.textContent()).toContain(`Where is my order ${RUN}`);
    await row.click();
    const log = page.getByRole('log');
    await log.getByText(`Where is my order ${RUN}`).waitFor();
    // the thread is open: the next message shows in it as it arrives
    await sim.whatsapp(id, { ...customer, text: `Any news ${RUN}?` });
    await log.getByText(`Any news ${RUN}?`).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('.qrow.selected').textContent()).toContain(`Any news ${RUN}?`);
    // neither appeared through a reload
    await expect(page.evaluate(() => (window as unknown as { e2eNoReload?: boolean }).e2eNoReload)).resolves.toBe(true);
  });

  it('WhatsApp: a reply is sent and its ticks turn delivered, then read', async (c) => {
    needSim(c);
    const text = `Your order ships today ${RUN} 🚚`;
    const reply = page.getByRole('textbox', { name: 'Reply' });
    await reply.fill(text);
    await reply.press('Enter');
    const bubble = page.locator('.bubble.out', { hasText: text });
    await bubble.waitFor();
    const seen: string[] = [];
    const track = async () => {
      const s = await tickStatus(bubble);
      if (seen.at(-1) !== s) seen.push(s);
      return s;
    };
    await expect.poll(track, { timeout: 15_000 }).toMatch(/^(delivered|read)$/);
    await expect.poll(track, { timeout: 15_000 }).toBe('read');
    expect(seen).not.toContain('failed');
    await expect(bubble.getByRole('img', { name: 'Read' }).count()).resolves.toBe(1);
    // the fake Graph API received exactly this text for this customer
    const sends = (await sim.requests(chans!.whatsapp.id)).filter((r) => r.method === 'POST' && r.path?.endsWith('/messages'));
    const mine = sends.filter((r) => (r.body?.text as { body?: string } | undefined)?.body === text);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.body?.to).toBe(customer.from);
    await shot(page, 'thread-delivered');
  });

  it('WhatsApp: send a file from the composer', async (c) => {
    needSim(c);
    const name = `invoice-${RUN}.pdf`;
    const pdf = Buffer.from(`%PDF-1.4\n% Parley e2e ${RUN}\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n`);
    await page.locator('.composer input[type=file]').setInputFiles({ name, mimeType: 'application/pdf', buffer: pdf });
    const chip = page.locator('.composer .chip', { hasText: name });
    await chip.waitFor();
    await expect.poll(() => chip.textContent()).not.toContain('Uploading');
    await expect(chip.getAttribute('class')).resolves.not.toContain('chip-error');
    await page.locator('.composer').getByRole('button', { name: 'Send', exact: true }).click();
    await chip.waitFor({ state: 'detached' });
    const bubble = page.locator('.bubble.out', { has: page.getByRole('link', { name: `Download ${name}` }) });
    await bubble.waitFor({ timeout: 10_000 });
    await expect.poll(() => tickStatus(bubble), { timeout: 15_000 }).toMatch(/^(delivered|read)$/);
    // the simulator received a document send with a link it can fetch without a session
    let link = '';
    await expect
      .poll(async () => {
        const send = (await sim.requests(chans!.whatsapp.id)).find(
          (r) => r.method === 'POST' && r.body?.type === 'document' && (r.body.document as { filename?: string }).filename === name,
        );
        link = (send?.body?.document as { link?: string } | undefined)?.link ?? '';
        return link;
      })
      .not.toBe('');
    const anon = await request.newContext();
    try {
      const res = await anon.get(link);
      expect(res.status()).toBe(200);
      expect(Buffer.compare(await res.body(), pdf)).toBe(0);
    } finally {
      await anon.dispose();
    }
  });

  it('WhatsApp: a received image loads through /attachments and opens', async (c) => {
    needSim(c);
    const id = chans!.whatsapp.id;
    const downloads = async () => (await sim.requests(id)).filter((r) => r.method === 'GET' && r.path?.startsWith('/whatsapp_business/')).length;
    const before = await downloads();
    const caption = `Photo of the box ${RUN}`;
    await sim.whatsapp(id, { ...customer, image: true, caption });
    const bubble = page.locator('.bubble.in', { hasText: caption });
    await bubble.waitFor({ timeout: 15_000 });
    const img = bubble.locator('img');
    await expect(img.getAttribute('src')).resolves.toMatch(new RegExp(`/api/v1/workspaces/${ws}/attachments/`));
    await img.scrollIntoViewIfNeeded();
    await expect.poll(() => img.evaluate((el: HTMLImageElement) => (el.complete ? el.naturalWidth : 0)), { timeout: 15_000 }).toBe(160);
    // Parley fetched it from the simulator's media CDN (with the channel token) for this view
    await expect.poll(downloads).toBeGreaterThan(before);
    await shot(page, 'thread-image');
    // opening it shows the image itself in a new tab
    const [tab] = await Promise.all([page.waitForEvent('popup'), img.click()]);
    await tab.waitForLoadState();
    expect(tab.url()).toMatch(/\/attachments\//);
    await expect.poll(() => tab.evaluate(() => document.images[0]?.naturalWidth ?? 0)).toBe(160);
    await tab.close();
  });

  it('Telegram group: the thread shows the group title and each sender', async (c) => {
    needSim(c);
    const tg = chans!.telegram.id;
    const chat = -(1001000000000 + (Date.now() % 1e9));
    const title = `Acme Buyers ${RUN}`;
    await page.goto(`/w/${ws}/inbox/all`);
    await page.mouse.move(900, 500);
    await sim.telegram(tg, { chat_id: chat, chat_title: title, from_id: 501, from_name: 'Maria Gomez', text: `Is the sale still on ${RUN}?` });
    await sim.telegram(tg, { chat_id: chat, chat_title: title, from_id: 502, from_name: 'Li Wei', text: `Same question from me ${RUN}` });
    const row = page.getByRole('link', { name: new RegExp(title) });
    await row.waitFor({ timeout: 15_000 });
    await row.click();
    const log = page.getByRole('log');
    await log.getByText(`Same question from me ${RUN}`).waitFor({ timeout: 15_000 });
    await expect(page.locator('.thread-title h2').textContent()).resolves.toContain(title);
    await page.locator('.thread-title h2').getByRole('img', { name: 'Group' }).waitFor();
    const sender = (text: string) => page.locator('.bubble.in', { hasText: text }).locator('.sender').textContent();
    await expect(sender(`Is the sale still on ${RUN}?`)).resolves.toBe('Maria Gomez');
    await expect(sender(`Same question from me ${RUN}`)).resolves.toBe('Li Wei');
    await shot(page, 'thread-group');
  });
});
