// The pair goals against the reference (upstream wireguard-go with offloads),
// as the bench prints them: each figure's ratio or difference, the goal beside
// it, and whether this run met it.

/** Medians of one engine's pair runs (the fields of PairResult the goals read). */
export interface PairSummary {
  tcp1Mbps: number;
  tcp4Mbps: number;
  udpMbps: number;
  machineCpuSecPerGb: number;
  cpuSecPerGb: number;
  rttMedianMs: number;
  rttWarmMedianMs: number;
  rttWarmP99Ms: number;
}

/** How far meshctl's warm median RTT may exceed the reference's, ms. */
export const WARM_P50_MARGIN_MS = 0.1;
/** How many times the reference's warm p99 meshctl's may reach. */
export const WARM_P99_FACTOR = 2;

export interface GoalLine {
  figure: string;
  /** meshctl / reference, or meshctl − reference for the median RTT */
  value: number;
  /** the value as printed, with its unit */
  shown: string;
  goal: string;
  /** null when a figure is missing on either side */
  met: boolean | null;
}

const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
const judged = (ok: boolean, ...xs: number[]): boolean | null => (xs.every(Number.isFinite) ? ok : null);

export function pairGoals(mc: PairSummary, ref: PairSummary): GoalLine[] {
  const ratio = (a: number, b: number): number => (b > 0 ? a / b : NaN);
  const tcp1 = ratio(mc.tcp1Mbps, ref.tcp1Mbps);
  const tcp4 = ratio(mc.tcp4Mbps, ref.tcp4Mbps);
  const udp = ratio(mc.udpMbps, ref.udpMbps);
  const cpu = ratio(mc.machineCpuSecPerGb, ref.machineCpuSecPerGb);
  const cpuProc = ratio(mc.cpuSecPerGb, ref.cpuSecPerGb);
  const p50 = mc.rttWarmMedianMs - ref.rttWarmMedianMs;
  const p99 = ratio(mc.rttWarmP99Ms, ref.rttWarmP99Ms);
  const fresh = mc.rttMedianMs - ref.rttMedianMs;
  return [
    { figure: 'TCP, 1 stream', value: tcp1, shown: `${f(tcp1, 2)}×`, goal: '≥ 1.0×', met: judged(tcp1 >= 1, tcp1) },
    { figure: 'TCP, 4 streams', value: tcp4, shown: `${f(tcp4, 2)}×`, goal: '≥ 1.0×', met: judged(tcp4 >= 1, tcp4) },
    { figure: 'UDP, 1,400 B', value: udp, shown: `${f(udp, 2)}×`, goal: '(information)', met: null },
    { figure: 'CPU per GB, whole machine', value: cpu, shown: `${f(cpu, 2)}×`, goal: '≤ 1.0× (upstream’s)', met: judged(cpu <= 1, cpu) },
    { figure: 'CPU per GB, engine processes', value: cpuProc, shown: `${f(cpuProc, 2)}×`, goal: '(information: misses softirq)', met: null },
    {
      figure: 'warm RTT p50',
      value: p50,
      shown: `${p50 >= 0 ? '+' : ''}${f(p50, 3)} ms`,
      goal: `≤ +${WARM_P50_MARGIN_MS} ms`,
      met: judged(p50 <= WARM_P50_MARGIN_MS + 1e-9, p50),
    },
    { figure: 'warm RTT p99', value: p99, shown: `${f(p99, 2)}×`, goal: `≤ ${WARM_P99_FACTOR}×`, met: judged(p99 <= WARM_P99_FACTOR, p99) },
    { figure: 'fresh RTT p50', value: fresh, shown: `${fresh >= 0 ? '+' : ''}${f(fresh, 3)} ms`, goal: '(information; goal withdrawn)', met: null },
  ];
}

/** One line per figure; with `judge` false (a column that is not the reference) the ratios alone. */
export function formatGoals(lines: GoalLine[], against: string, judge = true): string[] {
  if (!judge) return [`meshctl against ${against}: ${lines.map((l) => `${l.figure} ${l.shown}`).join(', ')}`];
  return [
    `meshctl against ${against}:`,
    ...lines.map((l) => `  ${l.figure.padEnd(30)}${l.shown.padStart(11)}   goal ${l.goal.padEnd(32)}${l.met === null ? '' : l.met ? 'met' : 'NOT met'}`),
  ];
}
