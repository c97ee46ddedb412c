/**
 * One line per fault or fuzz run, for `deno task robustness` (tests/robustness.ts) to gather into its
 * table: `robustness-report {json}` on stdout, beside the test's own output.
 *
 * @module
 */

/** What a run did and found; `anomalies` is empty when every check passed (a failed check throws). */
export interface RunReport {
  scenario: string;
  impl: string;
  /** Client operations issued (fuzz: inputs tried). */
  operations: number;
  /** Faults injected (fuzz: 0). */
  faults: number;
  seconds: number;
  anomalies?: string[];
  [more: string]: unknown;
}

/** The prefix tests/robustness.ts looks for. */
export const REPORT_PREFIX = "robustness-report ";

/** Prints `r` as one report line. */
export function report(r: RunReport): void {
  console.log(REPORT_PREFIX + JSON.stringify({ anomalies: [], ...r }));
}

/** The reports among `output`'s lines. */
export function parseReports(output: string): RunReport[] {
  const out: RunReport[] = [];
  for (const line of output.split("\n")) {
    const at = line.indexOf(REPORT_PREFIX);
    if (at >= 0) out.push(JSON.parse(line.slice(at + REPORT_PREFIX.length)) as RunReport);
  }
  return out;
}
