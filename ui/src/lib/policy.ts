// The PBX console's policy line per user: "recorded: yes, because …".
import type { UserView } from "./types";

export function policyLine(u: UserView): string {
  const i = u.explain.indexOf(", because ");
  const because = i >= 0 ? u.explain.slice(i + ", because ".length) : u.explain;
  return `recorded: ${u.recorded ? "yes" : "no"}, because ${because}`;
}

/** The address phones on the LAN register to, with the account form they use. */
export function registerHint(address: string | null, domain: string): string {
  if (!address) return "The PBX is stopped";
  return `Phones register to ${address} (UDP or TCP) as EXTENSION@${domain}`;
}
