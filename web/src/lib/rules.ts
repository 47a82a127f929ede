// Channel rules the composer shows before sending. The server enforces them too;
// these only spare the operator a round trip.
import type { Channel, Conversation } from '../api/types';

const LIMITS: Record<string, number> = {
  whatsapp: 4096,
  telegram: 4096,
  messenger: 2000,
  instagram: 1000,
  twilio_sms: 1600,
  wappi: 4096,
  webchat: 10000,
  api: 10000,
  email: 100000,
};

export const WHATSAPP_WINDOW_MS = 24 * 60 * 60 * 1000;

export function lengthLimit(kind: string): number | null {
  return LIMITS[kind] ?? null;
}

/** The WhatsApp Cloud API 24-hour customer service window. */
export function whatsappWindowClosed(conv: Conversation, channel: Channel | undefined, now = Date.now()): boolean {
  const kind = channel?.kind ?? conv.channel_kind;
  if (kind !== 'whatsapp') return false;
  if (!conv.last_inbound_at) return true;
  const at = Date.parse(conv.last_inbound_at);
  return !Number.isFinite(at) || now - at > WHATSAPP_WINDOW_MS;
}

export function isSms(conv: Conversation, channel: Channel | undefined): boolean {
  return (channel?.kind ?? conv.channel_kind) === 'twilio_sms';
}

/** The @mention query at the caret, if any: "@ann" → "ann". */
export function mentionQuery(text: string, caret: number): { query: string; start: number } | null {
  const before = text.slice(0, caret);
  // names have spaces: the query may span up to four words ("@Bob Sto")
  const m = /(^|\s)@((?:[\p{L}\p{N}._@-]+ ?){0,4})$/u.exec(before);
  if (!m) return null;
  return { query: (m[2] ?? '').trimEnd(), start: caret - (m[2]?.length ?? 0) - 1 };
}
