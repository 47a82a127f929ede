// Ephemeral real-time state that is not part of the change log: typing,
// viewers, presence and the connection state. A tiny external store.

export type ConnState = 'connecting' | 'open' | 'offline';

export interface LiveSnapshot {
  conn: ConnState;
  typing: Record<string, Record<string, number>>; // conversation -> user -> expiry ms
  viewers: Record<string, string[]>;
  presence: Record<string, string>;
}

export class LiveStore {
  private snap: LiveSnapshot = { conn: 'connecting', typing: {}, viewers: {}, presence: {} };
  private listeners = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  get = (): LiveSnapshot => this.snap;

  private set(next: LiveSnapshot): void {
    this.snap = next;
    this.listeners.forEach((fn) => fn());
  }

  setConn(conn: ConnState): void {
    if (this.snap.conn !== conn) this.set({ ...this.snap, conn });
  }

  typing(conversationId: string, userId: string, on: boolean, now = Date.now()): void {
    const conv = { ...(this.snap.typing[conversationId] ?? {}) };
    if (on) conv[userId] = now + 6000;
    else delete conv[userId];
    this.set({ ...this.snap, typing: { ...this.snap.typing, [conversationId]: conv } });
    this.scheduleExpiry();
  }

  viewers(conversationId: string, userIds: string[]): void {
    this.set({ ...this.snap, viewers: { ...this.snap.viewers, [conversationId]: userIds } });
  }

  hello(presence: Record<string, string>, viewers: Record<string, string[]>): void {
    this.set({ ...this.snap, presence: { ...presence }, viewers: { ...viewers } });
  }

  presence(userId: string, status: string): void {
    this.set({ ...this.snap, presence: { ...this.snap.presence, [userId]: status } });
  }

  private scheduleExpiry(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = Date.now();
      let dirty = false;
      let pending = false;
      const typing: LiveSnapshot['typing'] = {};
      for (const [c, users] of Object.entries(this.snap.typing)) {
        const kept: Record<string, number> = {};
        for (const [u, exp] of Object.entries(users)) {
          if (exp > now) {
            kept[u] = exp;
            pending = true;
          } else dirty = true;
        }
        typing[c] = kept;
      }
      if (dirty) this.set({ ...this.snap, typing });
      if (pending) this.scheduleExpiry();
    }, 1000);
  }
}

export function typingUsers(snap: LiveSnapshot, conversationId: string, exceptUser: string, now = Date.now()): string[] {
  const users = snap.typing[conversationId] ?? {};
  return Object.entries(users)
    .filter(([u, exp]) => u !== exceptUser && exp > now)
    .map(([u]) => u);
}

/** Reconnect delay: exponential with jitter, capped. */
export function backoff(attempt: number, rand: () => number = Math.random): number {
  const base = Math.min(15000, 500 * 2 ** Math.min(attempt, 5));
  return Math.round(base / 2 + (rand() * base) / 2);
}
