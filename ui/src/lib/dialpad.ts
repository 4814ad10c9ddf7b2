// The dial pad: what a key press does to the number, and whether it can be dialled.

export const KEYS: { key: string; sub: string }[] = [
  { key: "1", sub: "" }, { key: "2", sub: "ABC" }, { key: "3", sub: "DEF" },
  { key: "4", sub: "GHI" }, { key: "5", sub: "JKL" }, { key: "6", sub: "MNO" },
  { key: "7", sub: "PQRS" }, { key: "8", sub: "TUV" }, { key: "9", sub: "WXYZ" },
  { key: "*", sub: "" }, { key: "0", sub: "+" }, { key: "#", sub: "" },
];

export const MAX_LEN = 64;

export function press(number: string, key: string): string {
  if (number.length >= MAX_LEN) return number;
  return number + key;
}

export function backspace(number: string): string {
  return number.slice(0, -1);
}

/** Spaces, dashes, dots and brackets people paste are dropped; letters stay for sip: URIs. */
export function clean(input: string): string {
  const t = input.trim();
  if (/^sips?:/i.test(t)) return t;
  return t.replace(/[\s\-().]/g, "");
}

/** An error to show, or null when `input` can be dialled. */
export function dialError(input: string): string | null {
  const t = clean(input);
  if (t === "") return "Enter a number or an extension";
  if (/^sips?:[^@\s]+(@[^\s]+)?$/i.test(t)) return null;
  if (/^\+?[0-9*#]+$/.test(t)) return null;
  return `“${input.trim()}” is not a number, an extension or a sip: address`;
}

/** Keyboard keys that the dial pad takes. */
export function isDialKey(key: string): boolean {
  return /^[0-9*#+]$/.test(key);
}
