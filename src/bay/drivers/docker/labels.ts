import type { ResourceLabels } from "../driver.ts";

/** Marks every object this driver creates, so filters never match foreign containers. */
export const MANAGED_BY = { key: "managed-by", value: "bay" } as const;

/**
 * Maps Bay's label vocabulary to Docker labels and back. Docker labels are a flat
 * global namespace, so every key gets the configured prefix ("bay." by default).
 */
export class LabelCodec {
  constructor(
    private readonly prefix: string,
    /** Extra unprefixed labels stamped on, and filtered by, everything (e.g. tests). */
    private readonly extra: Record<string, string> = {},
  ) {}

  /** Docker labels for a new object: the given ones (plus `more`), managed-by and the extras. */
  encode(labels: Partial<ResourceLabels>, more: Record<string, string> = {}): Record<string, string> {
    const out: Record<string, string> = {};
    const all: Record<string, string | undefined> = {
      ...this.extra,
      ...more,
      ...labels,
      [MANAGED_BY.key]: MANAGED_BY.value,
    };
    for (const [key, value] of Object.entries(all)) {
      if (value !== undefined) out[this.prefix + key] = value;
    }
    return out;
  }

  /** A Docker `label` filter list ("k=v") matching objects that carry every given label. */
  filters(labels: Partial<ResourceLabels>, more: Record<string, string> = {}): string[] {
    return Object.entries(this.encode(labels, more)).map(([k, v]) => `${k}=${v}`);
  }

  /** Our labels with the prefix stripped; labels of other owners (e.g. the image's) are dropped. */
  decode(labels: Record<string, string> | null | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(labels ?? {})) {
      if (key.startsWith(this.prefix)) out[key.slice(this.prefix.length)] = value;
    }
    return out;
  }
}
