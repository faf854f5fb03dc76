// Pubkeys and event ids as people paste them (npub, nprofile, note, nevent) and as the API
// answers them (64 lowercase hex), through nostr-tools' NIP-19 codec.
import * as nip19 from "nostr-tools/nip19";

const HEX32 = /^[0-9a-f]{64}$/;

/** A pubkey as hex, from hex (any case), `npub1…` or `nprofile1…`. Throws on anything else. */
export function pubkeyToHex(pubkey: string): string {
  const s = pubkey.trim();
  if (HEX32.test(s.toLowerCase())) return s.toLowerCase();
  const decoded = decode(s, "pubkey");
  if (decoded.type === "npub") return decoded.data;
  if (decoded.type === "nprofile") return decoded.data.pubkey;
  throw new TypeError(`${s}: a ${decoded.type}, not a pubkey (npub, nprofile or hex)`);
}

/** A pubkey as `npub1…`, from hex, `npub1…` or `nprofile1…`. */
export function pubkeyToNpub(pubkey: string): string {
  return nip19.npubEncode(pubkeyToHex(pubkey));
}

/** An event id as hex, from hex, `note1…` or `nevent1…`. Throws on anything else. */
export function eventIdToHex(id: string): string {
  const s = id.trim();
  if (HEX32.test(s.toLowerCase())) return s.toLowerCase();
  const decoded = decode(s, "event id");
  if (decoded.type === "note") return decoded.data;
  if (decoded.type === "nevent") return decoded.data.id;
  throw new TypeError(`${s}: a ${decoded.type}, not an event id (note, nevent or hex)`);
}

/** An event id as `note1…`, from hex, `note1…` or `nevent1…`. */
export function eventIdToNote(id: string): string {
  return nip19.noteEncode(eventIdToHex(id));
}

/** `npub1abcd…wxyz`: short enough for a heading. */
export function shortNpub(pubkey: string): string {
  const npub = pubkeyToNpub(pubkey);
  return `${npub.slice(0, 10)}…${npub.slice(-4)}`;
}

function decode(s: string, what: string): nip19.DecodedResult {
  try {
    return nip19.decode(s);
  } catch (e) {
    throw new TypeError(`${s}: not a ${what} (${(e as Error).message})`);
  }
}
