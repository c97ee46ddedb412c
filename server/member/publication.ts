/**
 * A member publishes its name and client URLs through the log once per start, as etcd does, and serves
 * clients only once that entry is applied: it is then part of a working cluster with a leader, so a
 * member cut off in a minority never answers with stale data.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { hexId } from "../logger.ts";
import { ProposalKind } from "./proposal.ts";

/** What publishing needs of the member. */
export interface PublicationDeps {
  memberId: bigint;
  clusterId: bigint;
  name: string;
  advertiseClientUrls: URL[];
  logger: Logger;
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T>;
  /** Times the retry of a publication that failed. */
  clock: Clock;
}

/**
 * A failed publication (its proposal timed out: forwarded to a leader before the stream to it was up,
 * say) is proposed again after this long, until it succeeds, as etcd keeps publishing.
 */
export const PUBLISH_RETRY_MS = 500;

/** This member's publication and who waits for it. */
export class Publication {
  private published = false;
  private publishing = false;
  /** Set once the member closes: what waiting callers are told. */
  private closedWith: Error | undefined;
  private readonly waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private retry: number | undefined;

  constructor(private readonly d: PublicationDeps) {}

  /** Proposes the member's attributes unless that is done or under way; a failure is retried. */
  publish(): void {
    if (this.published || this.publishing || this.closedWith) return;
    if (this.retry !== undefined) this.d.clock.clearTimeout(this.retry);
    this.retry = undefined;
    this.publishing = true;
    const d = this.d;
    const attrs = {
      id: d.memberId.toString(16),
      name: d.name,
      clientUrls: d.advertiseClientUrls.map((u) => u.toString().replace(/\/$/, "")),
    };
    const payload = new TextEncoder().encode(JSON.stringify(attrs));
    d.propose(ProposalKind.MemberAttributes, payload, attrs).then(
      () => {
        this.published = true;
        this.publishing = false;
        for (const w of this.waiters.splice(0)) w.resolve();
        d.logger.info("published local member to cluster through raft", {
          "local-member-id": hexId(d.memberId),
          "local-member-attributes": JSON.stringify({ name: attrs.name, clientURLs: attrs.clientUrls }),
          "cluster-id": hexId(d.clusterId),
        });
      },
      (err) => {
        this.publishing = false;
        if (this.closedWith) return;
        d.logger.warn("failed to publish local member to cluster through raft; retrying", {
          "local-member-id": hexId(d.memberId),
          error: err instanceof Error ? err.message : String(err),
        });
        this.retry = d.clock.setTimeout(() => {
          this.retry = undefined;
          this.publish();
        }, PUBLISH_RETRY_MS);
      },
    );
  }

  /** Resolves once published; rejects if the member closes first. */
  whenPublished(): Promise<void> {
    if (this.published) return Promise.resolve();
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The member is closing: no more publishing, and whoever waits gets `err`. */
  close(err: Error): void {
    this.closedWith = err;
    if (this.retry !== undefined) this.d.clock.clearTimeout(this.retry);
    this.retry = undefined;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
