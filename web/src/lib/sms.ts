// SMS segment counter: GSM 03.38 7-bit default alphabet (with the extension
// table costing two septets) or UCS-2 when any character falls outside it.

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXT = '\f^{}\\[~]|€';

const basic = new Set(Array.from(GSM_BASIC));
const ext = new Set(Array.from(GSM_EXT));

export interface SmsInfo {
  encoding: 'GSM-7' | 'UCS-2';
  /** septets (GSM-7) or UTF-16 code units (UCS-2) used */
  units: number;
  segments: number;
  /** units left in the current segment */
  remaining: number;
  perSegment: number;
}

export function smsSegments(text: string): SmsInfo {
  let septets = 0;
  let gsm = true;
  for (const ch of text) {
    if (basic.has(ch)) septets += 1;
    else if (ext.has(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) {
    const single = 160;
    const multi = 153;
    if (septets === 0) return { encoding: 'GSM-7', units: 0, segments: 0, remaining: single, perSegment: single };
    if (septets <= single) return { encoding: 'GSM-7', units: septets, segments: 1, remaining: single - septets, perSegment: single };
    // an extension character's escape pair never straddles two segments
    let segments = 1;
    let used = 0;
    for (const ch of text) {
      const cost = ext.has(ch) ? 2 : 1;
      if (used + cost > multi) {
        segments++;
        used = 0;
      }
      used += cost;
    }
    return { encoding: 'GSM-7', units: septets, segments, remaining: multi - used, perSegment: multi };
  }
  const units = text.length; // UTF-16 code units
  const single = 70;
  const multi = 67;
  if (units <= single) return { encoding: 'UCS-2', units, segments: units ? 1 : 0, remaining: single - units, perSegment: single };
  // a surrogate pair is never split between segments
  let segments = 1;
  let used = 0;
  for (const ch of text) {
    const cost = ch.length;
    if (used + cost > multi) {
      segments++;
      used = 0;
    }
    used += cost;
  }
  return { encoding: 'UCS-2', units, segments, remaining: multi - used, perSegment: multi };
}
