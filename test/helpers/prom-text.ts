// A strict reader of the Prometheus text exposition (format 0.0.4) for the
// metrics tests: every line must be a HELP, a TYPE, a sample or blank, every
// sample's metric must have been declared by a TYPE line before it, and names
// and labels must follow the format. Returns the samples by series.
export interface Exposition {
  /** metric family name → type */
  types: Map<string, string>;
  /** `name{a="x",b="y"}` (labels sorted) → value */
  samples: Map<string, number>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)(?: -?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
/** histogram and summary samples carry these suffixes on their family's name */
const SUFFIXES = ['_bucket', '_sum', '_count'];

export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const l = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(',');
  return l ? `${name}{${l}}` : name;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1} ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('# HELP ')) {
      if (!NAME.test(line.slice(7).split(' ')[0]!)) throw new Error(`bad HELP name at ${where}`);
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!NAME.test(name ?? '') || !TYPES.has(type ?? '')) throw new Error(`bad TYPE at ${where}`);
      if (types.has(name!)) throw new Error(`TYPE twice for ${name} at ${where}`);
      types.set(name!, type!);
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample: ${where}`);
    const name = m[1]!;
    const family = types.has(name) ? name : SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((f) => f && types.has(f));
    if (!family) throw new Error(`sample of an undeclared metric at ${where}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      LABEL.lastIndex = 0;
      let lm;
      let end = 0;
      while ((lm = LABEL.exec(m[3])) !== null) {
        labels[lm[1]!] = lm[2]!;
        end = LABEL.lastIndex;
      }
      if (end !== m[3].length) throw new Error(`bad labels at ${where}`);
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(value) && m[4] !== 'NaN') throw new Error(`bad value at ${where}`);
    const key = seriesKey(name, labels);
    if (samples.has(key)) throw new Error(`series twice: ${key}`);
    samples.set(key, value);
  });
  return { types, samples };
}
