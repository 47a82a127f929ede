// The provider simulator (`parley sim serve`, PARLEY_E2E_SIM_URL) from the browser
// suite: Parley channels pointed at its fake WhatsApp Graph API and Telegram Bot
// API, registered through its control API (/_sim/…), and customers played in.
import type { APIRequestContext } from 'playwright-core';
import type { Api } from './harness';

export const SIM = (process.env.PARLEY_E2E_SIM_URL ?? '').replace(/\/$/, '');
export const NO_SIM = 'PARLEY_E2E_SIM_URL is not set: run scripts/e2e.sh, which starts the provider simulator (parley sim serve)';

/** One call the fake provider API received (GET /_sim/requests). */
export interface SimRequest {
  method: string; // HTTP method (Graph API) or Bot API method (Telegram)
  path?: string;
  status?: number;
  body?: Record<string, unknown>;
  at: string;
}

export interface SimChannel {
  id: string;
  name: string;
}

export interface SimSeed {
  whatsapp: SimChannel;
  telegram: SimChannel;
}

export class Sim {
  constructor(private readonly req: APIRequestContext) {}

  private async post<T>(path: string, body: unknown): Promise<T> {
    const res = await this.req.fetch(`${SIM}/_sim${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      data: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok()) throw new Error(`simulator POST ${path} → ${res.status()}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  register(ch: { id: string; kind: string; webhook_url: string; secrets: Record<string, string>; config: Record<string, unknown> }): Promise<void> {
    return this.post('/channels', ch);
  }

  /** A WhatsApp customer writes (text, or a picture when image is set); returns the wamid. */
  async whatsapp(channelId: string, m: { from: string; name: string; text?: string; image?: boolean; caption?: string }): Promise<string> {
    return (await this.post<{ id: string }>(`/whatsapp/${channelId}/inbound`, m)).id;
  }

  /** A Telegram user writes in a supergroup (chat_title set, chat_id negative) or privately. */
  async telegram(channelId: string, m: { chat_id?: number; chat_title?: string; from_id: number; from_name: string; text: string }): Promise<string> {
    return (await this.post<{ id: string }>(`/telegram/${channelId}/inbound`, m)).id;
  }

  async requests(channelId: string): Promise<SimRequest[]> {
    const res = await this.req.get(`${SIM}/_sim/requests?channel=${encodeURIComponent(channelId)}`);
    if (!res.ok()) throw new Error(`simulator requests → ${res.status()}: ${await res.text()}`);
    return (await res.json()) as SimRequest[];
  }
}

/**
 * Creates a WhatsApp and a Telegram channel through Parley's API, pointed at
 * the simulator, and registers both with it (same config as
 * cmd/parley/channels_e2e_test.go).
 */
export async function seedSim(api: Api, ws: string, sim: Sim, run: string): Promise<SimSeed> {
  const p = (path: string) => `/workspaces/${ws}${path}`;
  const make = async (kind: string, name: string, config: Record<string, unknown>, secrets: Record<string, string>): Promise<SimChannel> => {
    const ch = await api.call<{ id: string; webhook_url: string }>('POST', p('/channels'), { kind, name, config, secrets });
    await sim.register({ id: ch.id, kind, webhook_url: ch.webhook_url, secrets, config });
    return { id: ch.id, name };
  };
  const n = Date.now() % 1e9;
  const whatsapp = await make(
    'whatsapp',
    `WhatsApp ${run}`,
    { phone_number_id: `PN${n}`, waba_id: `WABA${n}`, api_base_url: `${SIM}/meta/v21.0` },
    { access_token: `EAAe2e${run}`, app_secret: `app-secret-${run}`, verify_token: `verify-${run}` },
  );
  const telegram = await make(
    'telegram',
    `Telegram ${run}`,
    { api_base_url: `${SIM}/telegram` },
    { bot_token: `${7000000000 + n}:ABCe2eSimToken_${run}`, webhook_secret: `tg-secret-${run}` },
  );
  return { whatsapp, telegram };
}
