/** One running cell of the JS kernel (kernel.ts): its output, its data budget, and how it ended early. */
import type { KernelDataItem } from "../protocol.ts";
import type { StreamName } from "./console.ts";
import { KernelPromise } from "./intrinsics.ts";
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
