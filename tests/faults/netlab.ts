/**
 * A small network of hosts for fault tests, made of Linux network namespaces the test creates and
 * removes: one namespace per member (10.77.N.1, 10.77.N.2, ... on `eth0`) and a hub namespace holding
 * the bridge that joins them (10.77.N.254), where clients run. The machine's own network is never
 * touched. Partitions are iptables rules inside the members' namespaces, so they cut members from each
 * other (and from clients, when asked) while processes keep their sockets.
 *
 * Needs root, `ip` and `iptables`; {@link NetLab.available} says whether this machine has them.
 *
 * @module
 */

let labCounter = 0;

/** Runs a command to its end; throws with its output when it fails. */
async function run(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd.join(" ")} failed (${out.code}): ${text}`);
  return text;
}

function which(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Hosts in namespaces, a hub for clients, and iptables partitions between them. */
export class NetLab {
  /** Namespace names of the hosts, in order. */
  readonly hosts: string[];
  /** Each host's address. */
  readonly ips: string[];
  readonly hub: string;
  readonly #subnet: number;

  private constructor(readonly id: string, n: number, subnet: number) {
    this.hub = `${id}h`;
    this.hosts = Array.from({ length: n }, (_, i) => `${id}m${i}`);
    this.ips = Array.from({ length: n }, (_, i) => `10.77.${subnet}.${i + 1}`);
    this.#subnet = subnet;
  }

  /** Whether network namespaces and iptables can be used here (root, `ip`, `iptables`). */
  static available(): boolean {
    return Deno.uid() === 0 && which("ip") && which("iptables");
  }

  /** Creates the namespaces, the bridge and one host per member. */
  static async create(n: number): Promise<NetLab> {
    const seq = labCounter++;
    const lab = new NetLab(`etl${Deno.pid % 100000}x${seq}`, n, (Deno.pid + seq) % 200 + 20);
    try {
      await run(["ip", "netns", "add", lab.hub]);
      await lab.#in(lab.hub, ["ip", "link", "set", "lo", "up"]);
      await lab.#in(lab.hub, ["ip", "link", "add", "br0", "type", "bridge"]);
      await lab.#in(lab.hub, ["ip", "addr", "add", `10.77.${lab.#subnet}.254/24`, "dev", "br0"]);
      await lab.#in(lab.hub, ["ip", "link", "set", "br0", "up"]);
      for (const [i, ns] of lab.hosts.entries()) {
        await run(["ip", "netns", "add", ns]);
        await lab.#in(ns, ["ip", "link", "set", "lo", "up"]);
        await lab.#in(lab.hub, [
          "ip",
          "link",
          "add",
          `v${i}`,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          ns,
        ]);
        await lab.#in(lab.hub, ["ip", "link", "set", `v${i}`, "master", "br0"]);
        await lab.#in(lab.hub, ["ip", "link", "set", `v${i}`, "up"]);
        await lab.#in(ns, ["ip", "addr", "add", `${lab.ips[i]}/24`, "dev", "eth0"]);
        await lab.#in(ns, ["ip", "link", "set", "eth0", "up"]);
      }
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  #in(ns: string, cmd: string[]): Promise<string> {
    return run(["ip", "netns", "exec", ns, ...cmd]);
  }

  /** A command that runs `cmd` inside namespace `ns`. */
  command(ns: string, cmd: string, args: string[], options: Deno.CommandOptions = {}): Deno.Command {
    return new Deno.Command("ip", { ...options, args: ["netns", "exec", ns, cmd, ...args] });
  }

  /**
   * Cuts the hosts into groups that cannot reach each other (both ways, all TCP/IP); hosts in no group
   * are cut from everyone. Clients in the hub still reach every host unless `clientsToo`.
   */
  async partition(groups: number[][], clientsToo = false): Promise<void> {
    await this.heal();
    const groupOf = new Map<number, number>();
    groups.forEach((g, gi) => g.forEach((h) => groupOf.set(h, gi)));
    for (let a = 0; a < this.hosts.length; a++) {
      for (let b = 0; b < this.hosts.length; b++) {
        if (a === b) continue;
        const ga = groupOf.get(a), gb = groupOf.get(b);
        if (ga !== undefined && ga === gb) continue;
        await this.#drop(a, this.ips[b]);
      }
      if (clientsToo && groupOf.get(a) === undefined) await this.#drop(a, `10.77.${this.#subnet}.254`);
    }
  }

  async #drop(host: number, peerIp: string): Promise<void> {
    const ns = this.hosts[host];
    await this.#in(ns, ["iptables", "-A", "INPUT", "-s", peerIp, "-j", "DROP"]);
    await this.#in(ns, ["iptables", "-A", "OUTPUT", "-d", peerIp, "-j", "DROP"]);
  }

  /** Removes every partition. */
  async heal(): Promise<void> {
    for (const ns of this.hosts) await this.#in(ns, ["iptables", "-F"]);
  }

  /** Removes the namespaces (processes still inside must have been stopped first). */
  async destroy(): Promise<void> {
    for (const ns of [...this.hosts, this.hub]) {
      await run(["ip", "netns", "del", ns]).catch(() => {});
    }
  }
}
