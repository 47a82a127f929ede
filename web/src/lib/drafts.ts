// Per-conversation drafts: kept in memory and in sessionStorage so they survive
// switching threads and a reload of the tab (but not a new tab).
const mem = new Map<string, string>();
const key = (id: string) => `parley.draft.${id}`;

export function loadDraft(id: string): string {
  if (mem.has(id)) return mem.get(id) ?? '';
  try {
    return sessionStorage.getItem(key(id)) ?? '';
  } catch {
    return '';
  }
}

export function saveDraft(id: string, text: string): void {
  if (text) mem.set(id, text);
  else mem.delete(id);
  try {
    if (text) sessionStorage.setItem(key(id), text);
    else sessionStorage.removeItem(key(id));
  } catch {
    /* storage full or unavailable: memory still holds it */
  }
}
