/**
 * The failures of bootstrapping through a discovery service, in etcd's words.
 *
 * @module
 */

/** Discovery failed; `reason` is stable, the message is etcd's (`discovery: cluster is full`, ...). */
export class DiscoveryError extends Error {
  readonly code = "DISCOVERY";
  constructor(message: string, readonly reason: string) {
    super(message);
    this.name = "DiscoveryError";
  }
}
