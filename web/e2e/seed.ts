// The seed step: puts data the flows need into the running server.
// The default uses only the public API: a label, a team, a second member and an
// `api` channel whose signed webhook delivers inbound messages. Set
// PARLEY_E2E_SEED=/path/to/module.ts to plug in another seed (e.g. the provider
// simulator); it must export `seed(ctx: SeedContext): Promise<SeedResult>`.
// The default seed throws when it cannot make inbound messages: a broken inbound
// path fails the run instead of skipping the flows that need it.
import type { Api } from './harness';

export interface SeedContext {
  api: Api;
  ws: string;
  userId: string;
}

export interface SeedResult {
  /** name of a contact with an inbound conversation of more than one page (>50) of messages */
  contactName: string;
  /** text of its newest inbound message */
  inboundText: string;
  /** a second member to assign and @mention (and to log in as, for the live flow) */
  memberName: string;
  memberEmail: string;
  memberPassword: string;
  /** a label to apply */
  labelName: string;
  /** a contact with a likely duplicate (for the merge flow) */
  duplicateName: string;
  /** set only by a plugged-in seed (PARLEY_E2E_SEED) that cannot make inbound messages: flows that need them
   *  are skipped with this reason. The default seed never sets it; it throws instead. */
  inboundError?: string;
  /** delivers one more inbound message from contactName now (for the live-queue flow) */
  sendInbound?: (text: string) => Promise<void>;
}

const SECRET = 'e2e-hmac-secret';

export async function seed({ api, ws }: SeedContext): Promise<SeedResult> {
  const p = (path: string) => `/workspaces/${ws}${path}`;
  const run = Date.now().toString(36);
  const labelName = `VIP-${run}`;
  await api.call('POST', p('/labels'), { name: labelName, color: '#b45309', description: 'e2e' });
  const memberName = `Bob Stone ${run}`;
  const memberEmail = `bob-${run}@example.com`;
  const memberPassword = 'another-long-password';
  await api.call('POST', p('/members'), { email: memberEmail, name: memberName, password: memberPassword, role: 'agent' });
  await api.call('POST', p('/teams'), { name: `Support ${run}`, description: 'e2e', member_ids: [] });
  const contactName = `Anna Petrova ${run}`;
  const duplicateName = `Ivan Sidorov ${run}`;
  const result: SeedResult = { contactName, inboundText: `Where is my order ${run}?`, memberName, memberEmail, memberPassword, labelName, duplicateName };
  const ch = await api.call<{ id: string }>('POST', p('/channels'), {
    kind: 'api',
    name: `API ${run}`,
    config: { callback_url: 'http://127.0.0.1:9/e2e-callback' },
    secrets: { hmac_secret: SECRET },
  });
  const now = Date.now();
  let extra = 0;
  result.sendInbound = (text: string) =>
    api.inbound(ch.id, SECRET, {
      external_id: `e2e-${run}-live-${extra++}`,
      contact: { identifier: `anna-${run}`, name: contactName, email: `anna-${run}@example.com`, phone: '' },
      text,
      attachments: [],
      timestamp: new Date().toISOString(),
    });
  for (let i = 0; i < 60; i++) {
    await api.inbound(ch.id, SECRET, {
      external_id: `e2e-${run}-a-${i}`,
      contact: { identifier: `anna-${run}`, name: contactName, email: `anna-${run}@example.com`, phone: '' },
      text: i === 59 ? `Where is my order ${run}?` : `History message ${i} ${run}`,
      attachments: [],
      timestamp: new Date(now - (60 - i) * 60_000).toISOString(),
    });
  }
  // a contact from the channel plus one created by hand with the same name and email: likely duplicates
  await api.inbound(ch.id, SECRET, {
    external_id: `e2e-${run}-i-1`,
    contact: { identifier: `ivan-${run}`, name: duplicateName, email: `ivan-${run}@example.com`, phone: '' },
    text: 'Hello from Ivan',
    attachments: [],
    timestamp: new Date(now - 1000).toISOString(),
  });
  await api.call('POST', p('/contacts'), { name: duplicateName, emails: [`ivan-${run}@example.com`], phones: ['+14155552671'] });

  // inbound processing is asynchronous: wait until the conversation is listed
  const deadline = Date.now() + 20_000;
  for (;;) {
    const page = await api.call<{ items: unknown[] | null }>('GET', p(`/conversations?view=all&q=${encodeURIComponent(contactName)}`));
    if ((page.items?.length ?? 0) > 0) break;
    if (Date.now() > deadline) throw new Error('inbound conversation did not appear within 20s');
    await new Promise((r) => setTimeout(r, 250));
  }
  return result;
}
