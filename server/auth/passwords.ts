/**
 * Password hashes with bcrypt (the `bcryptjs` library), at `--bcrypt-cost`, one at a time.
 *
 * Each hash or comparison costs bcrypt's work (tens of milliseconds at the default cost) and runs in
 * slices on the member's thread; running them one after another, with a bounded queue, keeps a flood of
 * Authenticate calls (password guessing) from starving everything else: guesses are answered at bcrypt's
 * pace and, past the queue, refused at once as too many requests. Passwords are never logged.
 *
 * @module
 */
import { GrpcError, Status } from "../transport/status.ts";

/** etcd's bounds and default for the cost. */
export const MIN_BCRYPT_COST = 4;
export const MAX_BCRYPT_COST = 31;
export const DEFAULT_BCRYPT_COST = 10;

/** Calls waiting for their turn beyond this many are refused. */
const MAX_WAITING = 64;

type Bcrypt = typeof import("bcryptjs").default;

export class Passwords {
  #bcrypt: Promise<Bcrypt> | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  /** @param cost bcrypt's work factor; outside etcd's bounds the default is used, as etcd does. */
  constructor(readonly cost: number) {
    if (!(cost >= MIN_BCRYPT_COST && cost <= MAX_BCRYPT_COST)) this.cost = DEFAULT_BCRYPT_COST;
  }

  /** A bcrypt hash of `password`. */
  hash(password: string): Promise<string> {
    return this.#queue(async (b) => await b.hash(password, this.cost));
  }

  /** Whether `password` matches `hash` (false for an empty or malformed hash). */
  matches(password: string, hash: string): Promise<boolean> {
    if (hash === "") return Promise.resolve(false);
    return this.#queue(async (b) => {
      try {
        return await b.compare(password, hash);
      } catch {
        return false;
      }
    });
  }

  #queue<T>(work: (b: Bcrypt) => Promise<T>): Promise<T> {
    if (this.#waiting >= MAX_WAITING) {
      return Promise.reject(new GrpcError(Status.RESOURCE_EXHAUSTED, "etcdserver: too many requests"));
    }
    this.#waiting++;
    this.#bcrypt ??= import("bcryptjs").then((m) => m.default);
    const run = this.#tail.then(async () => work(await this.#bcrypt!)).finally(() => this.#waiting--);
    this.#tail = run.catch(() => {});
    return run;
  }
}
