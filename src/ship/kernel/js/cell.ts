/** One running cell of the JS kernel (kernel.ts): its output, its data budget, and how it ended early. */
import type { KernelDataItem } from "../protocol.ts";
import type { StreamName } from "./console.ts";
import { KernelPromise, kernelIsPromise } from "./intrinsics.ts";
import { CellOutput, DataBudget } from "./output.ts";

/** How a cell's run ended. */
export type Outcome = { kind: "value"; value: unknown } | { kind: "error"; error: unknown } | { kind: "interrupted" };

/** One running cell. */
export class Cell {
  readonly output: CellOutput;
  readonly budget: DataBudget;
  readonly displays: KernelDataItem[] = [];
  /** Set once the cell's result is being built: interrupts and late errors no longer change it. */
  finishing = false;
  /** Set once Ship was told the cell is being interrupted. */
  acknowledged = false;
  /** Resolves when an interrupt or an uncaught error ends the cell early. */
  readonly stopped: Promise<Outcome>;
  stopOutcome: Outcome | null = null;
  private resolveStop!: (outcome: Outcome) => void;

  constructor(
    readonly id: number,
    readonly count: number,
    cap: number,
    emit: (name: StreamName, text: string) => void,
  ) {
    this.output = new CellOutput(cap, emit);
    this.budget = new DataBudget(cap);
    this.stopped = new KernelPromise((resolve) => {
      this.resolveStop = resolve;
    });
  }

  stop(outcome: Outcome): void {
    if (this.stopOutcome || this.finishing) return;
    this.stopOutcome = outcome;
    this.resolveStop(outcome);
  }
}

/**
 * The cell's value from what its script's wrapper fulfils with (transform.ts): the box's
 * `value`, or undefined when the cell ends in no expression. A genuine promise (a brand
 * check, not `then` nor the prototype chain) is awaited, as before; any other thenable is
 * a value like the rest: its `then` is user code (`Array.prototype.then = …`) and may
 * never call back. Answered boxed again, since an async function adopts a thenable result.
 */
export async function cellValue(completion: PromiseLike<unknown>): Promise<{ value: unknown }> {
  const box = (await completion) as { value: unknown } | undefined;
  const value = box === undefined ? undefined : box.value;
  return { __proto__: null, value: kernelIsPromise(value) ? await value : value } as { value: unknown };
}
