/**
 * Auth tokens, as `--auth-token` chooses them.
 *
 * - `simple` (etcd's default): a random prefix and the log index of the Authenticate entry
 *   (`AbCd...xyz.42`). Every member records the token when it applies that entry, so the token works on
 *   every member; it lives `--auth-token-ttl` seconds after its last use, on each member by its own
 *   clock. Tokens of a user die when the user is deleted or changes password; all die when auth is
 *   disabled. A member that has not applied the entry yet waits for it.
 * - `jwt,pub-key=F,priv-key=F,sign-method=M[,ttl=D]`: a signed JWT with the user name, the auth revision
 *   it was issued at and an expiry; any member with the public key can verify it. A token from before an
 *   auth change fails with "revision of auth store is old" once its revision is checked.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { AuthInfo } from "./store.ts";
import { parseDurationMs } from "../config/values.ts";

/** Thrown at start for a bad `--auth-token`; the message is etcd's. */
export class AuthTokenConfigError extends Error {
  readonly code = "AUTH_TOKEN_CONFIG";
  constructor(message: string) {
    super(message);
    this.name = "AuthTokenConfigError";
  }
}

/** What a token provider offers the auth layer. */
export interface TokenProvider {
  readonly kind: "simple" | "jwt";
  /**
   * The user and revision a token stands for, or undefined if it is not valid (unknown, expired, bad
   * signature). `revision` is the store's current one for simple tokens.
   */
  info(token: string, currentRevision: number, signal?: AbortSignal): Promise<AuthInfo | undefined>;
  /** Stops timers. */
  close(): void;
}

// ---- simple tokens ------------------------------------------------------------------------------

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SIMPLE_PREFIX_LENGTH = 16;

/** A random prefix for a simple token (the proposer makes it; the entry's index completes it). */
export function simpleTokenPrefix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(SIMPLE_PREFIX_LENGTH));
  let s = "";
  // 256 is not a multiple of 52: values from 208 on are drawn again, so every letter is equally likely
  for (let i = 0; s.length < SIMPLE_PREFIX_LENGTH; i++) {
    if (i === bytes.length) {
      crypto.getRandomValues(bytes);
      i = 0;
    }
    if (bytes[i] < 208) s += LETTERS[bytes[i] % 52];
  }
  return s;
}

interface SimpleEntry {
  username: string;
  expires: number;
}

/** etcd's simple tokens, kept per member. */
export class SimpleTokens implements TokenProvider {
  readonly kind = "simple";
  readonly #tokens = new Map<string, SimpleEntry>();
  readonly #waiting = new Map<string, Set<() => void>>();
  readonly #sweeper: number;

  /**
   * @param appliedIndex this member's applied index, to tell a token not applied yet from a dead one
   */
  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly appliedIndex: () => number,
  ) {
    this.#sweeper = clock.setInterval(() => this.#sweep(), 1000);
  }

  /** Records a token when its Authenticate entry is applied here. */
  assign(token: string, username: string): void {
    this.#tokens.set(token, { username, expires: this.clock.now() + this.ttlMs });
    const waiters = this.#waiting.get(token);
    if (waiters === undefined) return;
    this.#waiting.delete(token);
    for (const wake of waiters) wake();
  }

  /** Ends every token of `username` (deleted, or a new password). */
  invalidateUser(username: string): void {
    for (const [token, e] of this.#tokens) if (e.username === username) this.#tokens.delete(token);
  }

  /** Ends every token (auth disabled). */
  clear(): void {
    this.#tokens.clear();
  }

  async info(token: string, currentRevision: number, signal?: AbortSignal): Promise<AuthInfo | undefined> {
    const dot = token.indexOf(".");
    if (dot < 0 || token.indexOf(".", dot + 1) >= 0) return undefined;
    const index = Number(token.slice(dot + 1));
    if (!/^[0-9]+$/.test(token.slice(dot + 1)) || !Number.isSafeInteger(index)) return undefined;
    let e = this.#live(token);
    if (e === undefined && index > this.appliedIndex() && signal !== undefined && !signal.aborted) {
      // issued through another member, not applied here yet: wait for it as long as the call may
      await this.#applied(token, signal);
      e = this.#live(token);
    }
    if (e === undefined) return undefined;
    e.expires = this.clock.now() + this.ttlMs;
    return { username: e.username, revision: currentRevision };
  }

  close(): void {
    this.clock.clearInterval(this.#sweeper);
    for (const waiters of this.#waiting.values()) for (const wake of waiters) wake();
    this.#waiting.clear();
  }

  #live(token: string): SimpleEntry | undefined {
    const e = this.#tokens.get(token);
    if (e === undefined) return undefined;
    if (e.expires <= this.clock.now()) {
      this.#tokens.delete(token);
      return undefined;
    }
    return e;
  }

  #applied(token: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#waiting.get(token);
      if (waiters === undefined) this.#waiting.set(token, waiters = new Set());
      const wake = () => {
        signal.removeEventListener("abort", wake);
        waiters.delete(wake);
        if (waiters.size === 0 && this.#waiting.get(token) === waiters) this.#waiting.delete(token);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }

  #sweep(): void {
    const now = this.clock.now();
    for (const [token, e] of this.#tokens) if (e.expires <= now) this.#tokens.delete(token);
  }
}

// ---- JWT ----------------------------------------------------------------------------------------

const JWT_METHODS = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512",
]);

/** The options of `--auth-token jwt,...`. */
export interface JwtOptions {
  signMethod: string;
  publicKeyFile?: string;
  privateKeyFile?: string;
  ttlMs: number;
}

/** Reads `jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...` as etcd does (unknown options are ignored). */
export function parseJwtOptions(spec: string): JwtOptions {
  const opts = new Map<string, string>();
  for (const part of spec.split(",").slice(1)) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new AuthTokenConfigError("auth: invalid auth options");
    opts.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const signMethod = opts.get("sign-method") ?? "";
  // etcd: the method's own error ("invalid auth signature method") surfaces as invalid options
  if (!JWT_METHODS.has(signMethod)) throw new AuthTokenConfigError("auth: invalid auth options");
  const ttl = opts.get("ttl");
  const ttlMs = ttl === undefined || ttl === "" ? 5 * 60_000 : parseGoDuration(ttl);
  const publicKeyFile = opts.get("pub-key") || undefined;
  const privateKeyFile = opts.get("priv-key") || undefined;
  if (publicKeyFile === undefined && privateKeyFile === undefined) {
    throw new AuthTokenConfigError("auth: invalid auth options");
  }
  return { signMethod, publicKeyFile, privateKeyFile, ttlMs };
}

function parseGoDuration(s: string): number {
  let ms: number;
  try {
    ms = parseDurationMs(s);
  } catch {
    throw new AuthTokenConfigError("auth: invalid auth options");
  }
  if (!(ms > 0)) throw new AuthTokenConfigError("auth: invalid auth options");
  return ms;
}

type JoseKey = Awaited<ReturnType<typeof import("jose").importSPKI>> | Uint8Array;

/** Verified tokens kept this long, so a client's every request does not pay for a signature check. */
const VERIFIED_CACHE_MAX = 4096;

/** Signed tokens (etcd's `jwt`), through the `jose` library. */
export class JwtTokens implements TokenProvider {
  readonly kind = "jwt";
  readonly #verified = new Map<string, { info: AuthInfo; expiresMs: number }>();

  private constructor(
    private readonly clock: Clock,
    private readonly opts: JwtOptions,
    private readonly signKey: JoseKey | undefined,
    private readonly verifyKey: JoseKey,
    private readonly jose: typeof import("jose"),
  ) {}

  /** Loads the keys named in the options. */
  static async create(clock: Clock, opts: JwtOptions): Promise<JwtTokens> {
    const jose = await import("jose");
    const alg = opts.signMethod;
    const read = async (file: string) => {
      try {
        return await Deno.readTextFile(file);
      } catch (err) {
        throw new AuthTokenConfigError(`open ${file}: ${(err as Error).message}`);
      }
    };
    if (alg.startsWith("HS")) {
      const file = opts.privateKeyFile ?? opts.publicKeyFile!;
      const secret = new TextEncoder().encode(await read(file));
      return new JwtTokens(clock, opts, secret, secret, jose);
    }
    // node:crypto reads the key files: loaded only by a member with JWT tokens
    const { createPrivateKey, createPublicKey } = await import("node:crypto");
    let priv: KeyObject | undefined;
    let pub: KeyObject;
    try {
      if (opts.privateKeyFile !== undefined) priv = createPrivateKey(await read(opts.privateKeyFile));
      pub = opts.publicKeyFile !== undefined
        ? createPublicKey(await read(opts.publicKeyFile))
        : createPublicKey(priv!);
    } catch (err) {
      if (err instanceof AuthTokenConfigError) throw err;
      throw new AuthTokenConfigError(`auth: invalid auth options (${(err as Error).message})`);
    }
    try {
      const signKey = priv === undefined
        ? undefined
        : await jose.importPKCS8(priv.export({ type: "pkcs8", format: "pem" }) as string, alg);
      const verifyKey = await jose.importSPKI(pub.export({ type: "spki", format: "pem" }) as string, alg);
      return new JwtTokens(clock, opts, signKey, verifyKey, jose);
    } catch (err) {
      throw new AuthTokenConfigError(`auth: invalid auth signature method (${(err as Error).message})`);
    }
  }

  /** A token for `username`, issued at auth revision `revision`. */
  async sign(username: string, revision: number): Promise<string> {
    if (this.signKey === undefined) throw new Error("auth: token signing attempted with verify-only key");
    const exp = Math.floor((this.clock.now() + this.opts.ttlMs) / 1000);
    return await new this.jose.SignJWT({ username, revision })
      .setProtectedHeader({ alg: this.opts.signMethod })
      .setExpirationTime(exp)
      .sign(this.signKey);
  }

  async info(token: string): Promise<AuthInfo | undefined> {
    const now = this.clock.now();
    const hit = this.#verified.get(token);
    if (hit !== undefined) {
      if (hit.expiresMs > now) return hit.info;
      this.#verified.delete(token);
      return undefined;
    }
    try {
      const { payload } = await this.jose.jwtVerify(token, this.verifyKey, {
        algorithms: [this.opts.signMethod],
        currentDate: new Date(now),
      });
      const { username, revision, exp } = payload as {
        username?: unknown;
        revision?: unknown;
        exp?: unknown;
      };
      if (typeof username !== "string" || typeof revision !== "number") return undefined;
      const info = { username, revision };
      if (this.#verified.size >= VERIFIED_CACHE_MAX) this.#verified.clear();
      this.#verified.set(token, { info, expiresMs: typeof exp === "number" ? exp * 1000 : Infinity });
      return info;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.#verified.clear();
  }
}
