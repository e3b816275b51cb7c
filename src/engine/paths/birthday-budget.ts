// The numbers of port prediction (birthday.ts) and the arithmetic behind them.
// A hard NAT (Linux `masquerade random`) gives every new destination a uniform
// random port out of a range of R ports. The hard side opens k mappings toward
// the easy side's one public address and port; the easy side sends n probes to
// random ports of the hard side's public address. A probe that lands on one of
// the k ports reaches its socket, and that socket answers: a direct path.
//   P(miss) = (1 - k/R)^n   (with replacement; distinct probe ports do slightly better)

/** The budget and pace of one attempt, and the backoff between attempts. */
export interface BirthdayBudget {
  /** sockets the hard side opens, one mapping on its NAT each */
  hardSockets: number;
  /** probes the easy side sends, each to a random port of the hard side's address */
  easyProbes: number;
  /** the easy side's probe rate */
  probesPerSecond: number;
  /** the easy side waits this long before its first probe, so that the hard side's mappings exist when probes arrive */
  easyStartDelayMs: number;
  /** after the last probe, how long pongs are still awaited before the attempt counts as failed */
  graceMs: number;
  /** the port range the hard NAT draws from (inclusive) */
  portMin: number;
  portMax: number;
  /** the wait before the next attempt after a failure, doubling each failure up to backoffMaxMs */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** relayed traffic must flow this long without a direct path before this side asks for prediction */
  relayedBeforeMs: number;
}

/**
 * Linux picks a masqueraded source port with `random` from 1024–65535 when the original source port is ≥ 1024
 * (nf_nat_l4proto_unique_tuple: no range given, so min 1024 and 64,512 ports), uniformly (get_random_u16 mod range).
 */
export const MASQUERADE_PORT_MIN = 1024;
export const MASQUERADE_PORT_MAX = 65535;

export const DEFAULT_BIRTHDAY_BUDGET: BirthdayBudget = {
  // 256 sockets and 1,200 probes over 64,512 ports: P(miss) = (1 - 256/64512)^1200 = 0.85 %, so ≥ 99 % per attempt;
  // 256 descriptors stay well under the default 1,024 open-file limit
  hardSockets: 256,
  easyProbes: 1200,
  // 200 probes/s (~25 kB/s of 124-byte pings) is gentle on any uplink and on the NATs' conntrack tables; 1,200 take 6 s
  probesPerSecond: 200,
  easyStartDelayMs: 300,
  graceMs: 1500,
  portMin: MASQUERADE_PORT_MIN,
  portMax: MASQUERADE_PORT_MAX,
  // a failed attempt is retried after 10 s, 20 s, 40 s … at most every 5 min: a peer cannot make us probe in a loop
  backoffBaseMs: 10_000,
  backoffMaxMs: 300_000,
  // ordinary hole punching gets a heartbeat's time first: a peer with a mapped port (UPnP, NAT-PMP) needs no prediction
  relayedBeforeMs: 1000,
};

/** The chance that one attempt finds no shared port: k hard-side mappings, n easy-side probes, R ports. */
export function missProbability(k: number, n: number, rangePorts: number): number {
  return (1 - k / rangePorts) ** n;
}

/** The wait before attempt number `failures + 1` after `failures` failures in a row. */
export function backoffMs(b: Pick<BirthdayBudget, 'backoffBaseMs' | 'backoffMaxMs'>, failures: number): number {
  return failures <= 0 ? 0 : Math.min(b.backoffMaxMs, b.backoffBaseMs * 2 ** Math.min(failures - 1, 20));
}

/** How long the easy side's probes take, and the whole attempt with the start delay and grace, in ms. */
export function attemptMs(b: BirthdayBudget): number {
  return b.easyStartDelayMs + Math.ceil((b.easyProbes * 1000) / b.probesPerSecond) + b.graceMs;
}
