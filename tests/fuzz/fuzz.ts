/**
 * A small seeded fuzzer for the project's decoders: random and mutated valid inputs, each run bounded in
 * count and time. An input that makes a target throw anything but the errors it declares (or break a
 * property the target checks) fails the test with the seed and the input in hex, so it replays:
 * `FUZZ_SEED=<seed> deno test -A tests/fuzz/<file>` runs that seed alone, `FUZZ_RUNS=<n>` runs more inputs
 * per target (the documented long run).
 */
import { Prng } from "../sim/prng.ts";

/** Inputs per target in `deno task test`; `FUZZ_RUNS` raises it. */
export const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "2000");
/** Stop a target after this long even if inputs remain (the suite stays short). */
export const TIME_LIMIT_MS = Number(Deno.env.get("FUZZ_TIME_MS") ?? "3000");
const FIXED_SEED = Deno.env.get("FUZZ_SEED");

/** One seeded mutation of `base`: bit flips, byte changes, inserts, deletes, truncation, splices. */
export function mutate(rng: Prng, base: Uint8Array, corpus: readonly Uint8Array[]): Uint8Array {
  let b: Uint8Array = base.slice();
  const steps = 1 + rng.int(4);
  for (let s = 0; s < steps; s++) {
    const op = rng.int(8);
    if (b.length === 0 && op < 6) {
      b = randomBytes(rng, 1 + rng.int(16));
      continue;
    }
    const at = rng.int(Math.max(1, b.length));
    switch (op) {
      case 0: // flip a bit
        b[at] ^= 1 << rng.int(8);
        break;
      case 1: // an interesting byte
        b[at] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x0a, 0x3a]);
        break;
      case 2: // a random byte
        b[at] = rng.int(256);
        break;
      case 3: { // insert random bytes
        const ins = randomBytes(rng, 1 + rng.int(8));
        b = concat(b.subarray(0, at), ins, b.subarray(at));
        break;
      }
      case 4: // delete a run
        b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(8))));
        break;
      case 5: // truncate
        b = b.slice(0, at);
        break;
      case 6: { // splice in a piece of another input
        const other = corpus.length > 0 ? rng.pick(corpus) : randomBytes(rng, 8);
        const from = rng.int(Math.max(1, other.length));
        b = concat(b.subarray(0, at), other.subarray(from, from + 1 + rng.int(32)));
        break;
      }
      default: { // a big varint where one may be (lengths, counts)
        const big = [0xff, 0xff, 0xff, 0xff, 0x0f];
        b = concat(b.subarray(0, at), new Uint8Array(big), b.subarray(at));
      }
    }
  }
  return b;
}

/** `n` random bytes. */
export function randomBytes(rng: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function hex(b: Uint8Array): string {
  return [...b.subarray(0, 512)].map((x) => x.toString(16).padStart(2, "0")).join("") +
    (b.length > 512 ? `... (${b.length} bytes)` : "");
}

/** A fuzz target: `run` throws only errors `expected` accepts, or the input found a bug. */
export interface Target {
  name: string;
  /** Valid inputs to mutate (the corpus). */
  corpus: Uint8Array[];
  run(input: Uint8Array): void | Promise<void>;
  /** The errors the target may throw on bad input. */
  expected(err: unknown): boolean;
}

/** The figures of one target's run. */
export interface FuzzReport {
  name: string;
  seed: number;
  inputs: number;
  rejected: number;
  ms: number;
}

/** Runs a target on seeded inputs; throws on the first unexpected error, naming seed, index and input. */
export async function fuzz(
  t: Target,
  seed = FIXED_SEED !== undefined ? Number(FIXED_SEED) : randomSeed(),
): Promise<
  FuzzReport
> {
  const rng = new Prng(seed);
  const started = performance.now();
  let inputs = 0;
  let rejected = 0;
  for (let i = 0; i < RUNS && performance.now() - started < TIME_LIMIT_MS; i++) {
    const base = t.corpus.length > 0 ? rng.pick(t.corpus) : new Uint8Array(0);
    const input = rng.chance(0.1) ? randomBytes(rng, rng.int(64)) : mutate(rng, base, t.corpus);
    inputs++;
    try {
      await t.run(input);
    } catch (err) {
      if (t.expected(err)) {
        rejected++;
        continue;
      }
      const what = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err);
      throw new Error(
        `fuzz target ${t.name}: unexpected failure at input ${i} (replay with FUZZ_SEED=${seed}):\n` +
          `${what}\ninput: ${hex(input)}`,
      );
    }
  }
  return { name: t.name, seed, inputs, rejected, ms: Math.round(performance.now() - started) };
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Prints a report line (the seed lets a run be repeated exactly). */
export function log(r: FuzzReport): void {
  console.log(`fuzz ${r.name}: seed ${r.seed}, ${r.inputs} inputs (${r.rejected} refused) in ${r.ms} ms`);
}
