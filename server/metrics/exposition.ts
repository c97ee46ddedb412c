/**
 * Prometheus's text exposition format 0.0.4, as etcd's Go client writes it: metric families (counter,
 * gauge, histogram) with help, type and label names, rendered when scraped.
 *
 * Counters and gauges hold no values: their samples come from a callback at scrape time, which reads
 * whatever plain fields or views the owner keeps. Histograms count as they are observed: each label set
 * gets one {@link HistogramChild} (a `Float64Array` of bucket counts, a sum and a count), which the owner
 * asks for once and keeps, so an observation is a short scan of the bounds and three additions.
 *
 * The output: `# HELP name help` (with `\` and newline escaped), `# TYPE name type`, then one line per
 * sample, `name{label="value",...} value` (label values with `\`, `"` and newline escaped); a histogram's
 * samples are its cumulative `_bucket{...,le="bound"}` counts ending with `le="+Inf"`, then `_sum` and
 * `_count`. A family without samples is left out, as Go's registry leaves it out. Numbers are written
 * as JavaScript prints them (`1024`, `0.001`, `1e-7`), with `+Inf`, `-Inf` and `NaN` as Prometheus
 * spells them; Prometheus parses both this and Go's `1.024e+03` style.
 *
 * @module
 */

/** The content type of {@link Registry.text}: Prometheus's text format 0.0.4. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The kinds of metric families this module renders. */
export type MetricType = "counter" | "gauge" | "histogram";

/**
 * Hands one sample to the exposition: its value and its label values, in the order of the family's
 * label names (none for a family without labels).
 */
export type Emit = (value: number, labelValues?: readonly string[]) => void;

/** What a counter or gauge family takes. */
export interface ScalarOptions {
  name: string;
  help: string;
  /** The label names of every sample; default none. */
  labelNames?: readonly string[];
  /** Called at every scrape: emits the family's samples (none leaves the family out). */
  collect(emit: Emit): void;
}

/** What a histogram family takes. */
export interface HistogramOptions {
  name: string;
  help: string;
  /** The label names of every child; default none (then the family has one child from the start). */
  labelNames?: readonly string[];
  /** The finite upper bounds, ascending; `+Inf` is implied. */
  buckets: readonly number[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A number as the exposition writes it: `+Inf`, `-Inf`, `NaN`, integers without a decimal point. */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

/** A HELP text with `\` and newline escaped. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A label value with `\`, `"` and newline escaped. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `a="x",b="y"` for `names` and `values` (empty for no labels). */
function labelPairs(names: readonly string[], values: readonly string[]): string {
  let out = "";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ",";
    out += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out;
}

function checkNames(name: string, labelNames: readonly string[], reserved: readonly string[]): void {
  if (!NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
  const seen = new Set<string>();
  for (const l of labelNames) {
    if (!LABEL_NAME.test(l) || l.startsWith("__")) throw new TypeError(`${name}: invalid label name ${l}`);
    if (reserved.includes(l)) throw new TypeError(`${name}: the label name ${l} is reserved`);
    if (seen.has(l)) throw new TypeError(`${name}: the label name ${l} is repeated`);
    seen.add(l);
  }
}

/** One family in a {@link Registry}. */
interface Family {
  readonly name: string;
  /** Its samples' lines, each ending with a newline; "" when it has none. */
  samples(): string;
  readonly header: string;
}

/** A counter or gauge family whose samples come from a callback at scrape time. */
class ScalarFamily implements Family {
  readonly name: string;
  readonly header: string;
  readonly #labelNames: readonly string[];
  readonly #collect: (emit: Emit) => void;

  constructor(type: "counter" | "gauge", o: ScalarOptions) {
    this.name = o.name;
    this.#labelNames = [...(o.labelNames ?? [])];
    checkNames(o.name, this.#labelNames, []);
    this.#collect = o.collect;
    this.header = `# HELP ${o.name} ${escapeHelp(o.help)}\n# TYPE ${o.name} ${type}\n`;
  }

  samples(): string {
    let out = "";
    const names = this.#labelNames;
    this.#collect((value, labelValues = []) => {
      if (labelValues.length !== names.length) {
        throw new TypeError(`${this.name}: ${labelValues.length} label values for ${names.length} names`);
      }
      const labels = names.length === 0 ? "" : `{${labelPairs(names, labelValues)}}`;
      out += `${this.name}${labels} ${formatValue(value)}\n`;
    });
    return out;
  }
}

/** The observations of one label set of a histogram. */
export class HistogramChild {
  /** Observations per bucket (not cumulative), by bound; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  /** The sum of the observed values. */
  sum = 0;
  /** How many values were observed. */
  count = 0;
  readonly #bounds: readonly number[];

  /** `labels`: the rendered label pairs (`a="x",b="y"`), "" for none. */
  constructor(bounds: readonly number[], readonly labels: string) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `v` into the first bucket whose bound is at least `v`. */
  observe(v: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** A histogram family with fixed buckets and one {@link HistogramChild} per label set. */
export class Histogram implements Family {
  readonly name: string;
  readonly header: string;
  readonly #labelNames: readonly string[];
  readonly #bounds: readonly number[];
  /** `le="bound"` for each bound, and `le="+Inf"` last. */
  readonly #le: readonly string[];
  readonly #children = new Map<string, HistogramChild>();

  constructor(o: HistogramOptions) {
    this.name = o.name;
    this.#labelNames = [...(o.labelNames ?? [])];
    checkNames(o.name, this.#labelNames, ["le"]);
    for (let i = 0; i < o.buckets.length; i++) {
      if (!Number.isFinite(o.buckets[i]) || (i > 0 && o.buckets[i] <= o.buckets[i - 1])) {
        throw new TypeError(`${o.name}: buckets must be finite and ascending`);
      }
    }
    this.#bounds = [...o.buckets];
    this.#le = [...this.#bounds.map((b) => `le="${formatValue(b)}"`), 'le="+Inf"'];
    this.header = `# HELP ${o.name} ${escapeHelp(o.help)}\n# TYPE ${o.name} histogram\n`;
    if (this.#labelNames.length === 0) this.labels();
  }

  /**
   * The child of the label set `labelValues` (in the order of the label names), made on first use and
   * listed from then on, zeros included. Ask once and keep it: this joins and looks up the values.
   */
  labels(...labelValues: string[]): HistogramChild {
    if (labelValues.length !== this.#labelNames.length) {
      throw new TypeError(
        `${this.name}: ${labelValues.length} label values for ${this.#labelNames.length} names`,
      );
    }
    const key = JSON.stringify(labelValues);
    let child = this.#children.get(key);
    if (child === undefined) {
      child = new HistogramChild(this.#bounds, labelPairs(this.#labelNames, labelValues));
      this.#children.set(key, child);
    }
    return child;
  }

  /** Observes `v` in the family without labels. */
  observe(v: number): void {
    this.labels().observe(v);
  }

  samples(): string {
    let out = "";
    const name = this.name;
    const le = this.#le;
    for (const child of this.#children.values()) {
      const prefix = child.labels === "" ? "{" : `{${child.labels},`;
      let cumulative = 0;
      for (let i = 0; i < le.length; i++) {
        cumulative += child.counts[i];
        out += `${name}_bucket${prefix}${le[i]}} ${formatValue(cumulative)}\n`;
      }
      const labels = child.labels === "" ? "" : `{${child.labels}}`;
      out += `${name}_sum${labels} ${formatValue(child.sum)}\n`;
      out += `${name}_count${labels} ${formatValue(child.count)}\n`;
    }
    return out;
  }
}

/**
 * A set of metric families rendered together, in the order they were added. A member has its own, so
 * that several members in one process never share a series.
 */
export class Registry {
  /** The content type of {@link text}. */
  readonly contentType: string = CONTENT_TYPE;
  readonly #families: Family[] = [];
  readonly #names = new Set<string>();
  readonly #beforeCollect: (() => void)[] = [];

  /** A counter family whose samples `o.collect` emits at each scrape. */
  counter(o: ScalarOptions): void {
    this.#add(new ScalarFamily("counter", o));
  }

  /** A gauge family whose samples `o.collect` emits at each scrape. */
  gauge(o: ScalarOptions): void {
    this.#add(new ScalarFamily("gauge", o));
  }

  /** A histogram family, observed through its children. */
  histogram(o: HistogramOptions): Histogram {
    const h = new Histogram(o);
    this.#add(h);
    return h;
  }

  /**
   * Runs `fn` at the start of every scrape, before any family is collected: one read that several
   * families then report from (one file read for several process figures).
   */
  beforeCollect(fn: () => void): void {
    this.#beforeCollect.push(fn);
  }

  /** Every family with samples, in Prometheus's text format. */
  text(): string {
    for (const fn of this.#beforeCollect) fn();
    let out = "";
    for (const f of this.#families) {
      const samples = f.samples();
      if (samples !== "") out += f.header + samples;
    }
    return out;
  }

  #add(f: Family): void {
    if (this.#names.has(f.name)) throw new TypeError(`a metric named ${f.name} is already registered`);
    this.#names.add(f.name);
    this.#families.push(f);
  }
}
