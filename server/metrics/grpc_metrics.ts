/**
 * The gRPC server metrics go-grpc-prometheus gives etcd: `grpc_server_started_total`,
 * `grpc_server_handled_total` (with `grpc_code`), `grpc_server_msg_received_total` and
 * `grpc_server_msg_sent_total` by `grpc_type`, `grpc_service` and `grpc_method`, and with
 * `--metrics extensive` the `grpc_server_handling_seconds` histograms.
 *
 * Calls count into plain numbers of one {@link GrpcMethodCounters} per method, handed out once when the
 * method is registered (see `GrpcRouter.observe`): nothing is looked up, hashed or allocated per call.
 * The counters become Prometheus series only when scraped; like go-grpc-prometheus's initialised
 * metrics, every registered method is listed, with every status code, zeros included (and with
 * `--metrics extensive`, its handling histogram).
 *
 * @module
 */
import type { Histogram, Registry } from "./exposition.ts";
import type { GrpcMethodCounters, GrpcObserver } from "../transport/grpc.ts";

/** grpc-go's status code names, by code, as `grpc_code` spells them. */
export const GRPC_CODE_NAMES: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** The streaming methods of etcd's API whose client sends one request (the rest stream both ways). */
const SERVER_STREAMS: ReadonlySet<string> = new Set([
  "/etcdserverpb.Maintenance/Snapshot",
  "/grpc.health.v1.Health/Watch",
  "/v3electionpb.Election/Observe",
]);

/** The histogram buckets of go-grpc-prometheus (Prometheus's default buckets), in seconds. */
export const HANDLING_SECONDS_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** `grpc_type`, `grpc_service` and `grpc_method`, in that order. */
type MethodLabels = readonly [type: string, service: string, method: string];

/** One method's counters and its label values. */
class MethodCounters implements GrpcMethodCounters {
  started = 0;
  received = 0;
  sent = 0;
  readonly handled: number[] = new Array(GRPC_CODE_NAMES.length).fill(0);
  readonly timing?: { now(): number; observe(ms: number): void };

  constructor(readonly labels: MethodLabels, timing?: { now(): number; observe(ms: number): void }) {
    this.timing = timing;
  }
}

/** What {@link GrpcMetrics} takes. */
export interface GrpcMetricsOptions {
  /** The member's registry. */
  registry: Registry;
  /** Time calls into `grpc_server_handling_seconds` (etcd's `--metrics extensive`). */
  extensive: boolean;
  /** Milliseconds, for call durations; default `performance.now`. */
  now?: () => number;
}

/** A member's gRPC metrics: the {@link GrpcObserver} a router counts its calls with. */
export class GrpcMetrics implements GrpcObserver {
  readonly #methods = new Map<string, MethodCounters>();
  readonly #handling: Histogram | undefined;
  readonly #now: () => number;

  constructor(o: GrpcMetricsOptions) {
    this.#now = o.now ?? (() => performance.now());
    const methods = this.#methods;
    const labelNames = ["grpc_type", "grpc_service", "grpc_method"];
    const perMethod = (name: string, help: string, read: (m: MethodCounters) => number) =>
      o.registry.counter({
        name,
        help,
        labelNames,
        collect(emit) {
          for (const m of methods.values()) emit(read(m), m.labels);
        },
      });
    perMethod("grpc_server_started_total", "Total number of RPCs started on the server.", (m) => m.started);
    o.registry.counter({
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: [...labelNames, "grpc_code"],
      collect(emit) {
        for (const m of methods.values()) {
          for (let code = 0; code < GRPC_CODE_NAMES.length; code++) {
            emit(m.handled[code], [...m.labels, GRPC_CODE_NAMES[code]]);
          }
        }
      },
    });
    perMethod(
      "grpc_server_msg_received_total",
      "Total number of RPC stream messages received on the server.",
      (m) => m.received,
    );
    perMethod(
      "grpc_server_msg_sent_total",
      "Total number of gRPC stream messages sent by the server.",
      (m) => m.sent,
    );
    if (o.extensive) {
      this.#handling = o.registry.histogram({
        name: "grpc_server_handling_seconds",
        help:
          "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        labelNames,
        buckets: HANDLING_SECONDS_BUCKETS,
      });
    }
  }

  /** Messages received over every method so far. */
  receivedTotal(): number {
    let n = 0;
    for (const m of this.#methods.values()) n += m.received;
    return n;
  }

  /** The counters of `path`, made once per method (a router asks when the method is registered). */
  method(path: string, streaming: boolean): GrpcMethodCounters {
    const known = this.#methods.get(path);
    if (known !== undefined) return known;
    const slash = path.lastIndexOf("/");
    const labels: MethodLabels = [
      !streaming ? "unary" : SERVER_STREAMS.has(path) ? "server_stream" : "bidi_stream",
      path.slice(1, slash),
      path.slice(slash + 1),
    ];
    let timing: { now(): number; observe(ms: number): void } | undefined;
    if (this.#handling !== undefined) {
      const child = this.#handling.labels(...labels);
      timing = { now: this.#now, observe: (ms) => child.observe(ms / 1000) };
    }
    const m = new MethodCounters(labels, timing);
    this.#methods.set(path, m);
    return m;
  }
}
