/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4). Updating a series
 * is a Map lookup and an add; all formatting happens at scrape time.
 * Label values must come from bounded sets (route templates, statuses,
 * profile ids), never from owners or resource ids.
 */

type Labels<L extends string> = Record<L, string>;

interface Series {
  labels: string;
  value: number;
}

/** `{a="x",b="y"}` with the format's escaping; empty for no labels. */
function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** Sample values: integers as such, floats in shortest form, infinities and NaN as the format spells them. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

abstract class Family<L extends string> {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name ${name}`);
  }
  abstract readonly type: "counter" | "gauge" | "histogram";
  protected key(labels: Labels<L> | undefined): { key: string; values: string[] } {
    const values = this.labelNames.map((n) => {
      const v = labels?.[n];
      if (v === undefined) throw new Error(`${this.name}: label ${n} missing`);
      return v;
    });
    return { key: values.join("\u0000"), values };
  }
  header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }
  abstract render(): string;
}

class ScalarFamily<L extends string> extends Family<L> {
  readonly type: "counter" | "gauge";
  private readonly series = new Map<string, Series>();
  constructor(type: "counter" | "gauge", name: string, help: string, labelNames: readonly L[]) {
    super(name, help, labelNames);
    this.type = type;
  }
  protected slot(labels?: Labels<L>): Series {
    const { key, values } = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: renderLabels(this.labelNames, values), value: 0 };
      this.series.set(key, s);
    }
    return s;
  }
  /** Drops every series (a gauge refilled from scratch at collect time). */
  reset(): void {
    this.series.clear();
  }
  render(): string {
    let out = this.header();
    for (const s of this.series.values()) out += `${this.name}${s.labels} ${formatValue(s.value)}\n`;
    return out;
  }
}

/** A monotonically increasing count. */
export class Counter<L extends string = never> extends ScalarFamily<L> {
  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    super("counter", name, help, labelNames);
  }
  inc(labels?: Labels<L>, by = 1): void {
    if (by < 0) throw new Error(`${this.name}: a counter only goes up`);
    this.slot(labels).value += by;
  }
  /** Makes a series exist at 0, so it is scraped before its first event. */
  init(labels?: Labels<L>): void {
    this.slot(labels);
  }
  /** One series, resolved once, for a hot path that increments it often. */
  child(labels?: Labels<L>): { inc(by?: number): void } {
    const s = this.slot(labels);
    return {
      inc: (by = 1) => {
        if (by < 0) throw new Error(`${this.name}: a counter only goes up`);
        s.value += by;
      },
    };
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends ScalarFamily<L> {
  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    super("gauge", name, help, labelNames);
  }
  set(labels: Labels<L> | undefined, value: number): void {
    this.slot(labels).value = value;
  }
  add(labels: Labels<L> | undefined, by: number): void {
    this.slot(labels).value += by;
  }
}

interface HistogramSeries {
  values: string[];
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets (cumulative at render time). */
export class Histogram<L extends string = never> extends Family<L> {
  readonly type = "histogram" as const;
  private readonly series = new Map<string, HistogramSeries>();
  private readonly bounds: number[];
  constructor(name: string, help: string, labelNames: readonly L[], buckets: number[]) {
    super(name, help, labelNames);
    this.bounds = [...buckets].sort((a, b) => a - b);
  }
  observe(labels: Labels<L> | undefined, value: number): void {
    this.record(this.slot(labels), value);
  }
  /** One series, resolved once, for a hot path that observes it often. */
  child(labels?: Labels<L>): { observe(value: number): void } {
    const s = this.slot(labels);
    return { observe: (value) => this.record(s, value) };
  }
  private slot(labels: Labels<L> | undefined): HistogramSeries {
    const { key, values } = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { values, counts: new Array(this.bounds.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }
  private record(s: HistogramSeries, value: number): void {
    // Counted in the first bucket only; render() accumulates.
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string {
    let out = this.header();
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i]!;
        out += `${this.name}_bucket${renderLabels(this.labelNames, s.values, ["le", formatValue(this.bounds[i]!)])} ${cumulative}\n`;
      }
      out += `${this.name}_bucket${renderLabels(this.labelNames, s.values, ["le", "+Inf"])} ${s.count}\n`;
      const labels = renderLabels(this.labelNames, s.values);
      out += `${this.name}_sum${labels} ${formatValue(s.sum)}\n${this.name}_count${labels} ${s.count}\n`;
    }
    return out;
  }
}

/** The families of one Bay, and the collectors that refresh gauges at scrape time. */
export class MetricsRegistry {
  private readonly families: Family<string>[] = [];
  private readonly collectors: Array<() => Promise<void> | void> = [];

  register<F extends Family<string>>(family: F): F {
    if (this.families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.push(family);
    return family;
  }

  /** Runs before every render; a collector that throws leaves its families as they were. */
  onCollect(fn: () => Promise<void> | void): void {
    this.collectors.push(fn);
  }

  /** The whole registry in the text exposition format. */
  async render(): Promise<string> {
    await Promise.all(this.collectors.map(async (c) => c()));
    return this.families.map((f) => f.render()).join("");
  }
}

/** Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
