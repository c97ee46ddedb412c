/**
 * Generates server/pb/rpc.ts (the codec) and server/pb/rpc_json.ts (the JSON gateway's mapping) from
 * etcd's .proto files as the etcd3 npm package ships them:
 *
 *     deno run -A server/pb/gen/main.ts           writes both files
 *     deno run -A server/pb/gen/main.ts --check   exits 1 if either is not up to date
 *
 * What is generated, and how, is in config.ts.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { CONFIG, type GenConfig } from "./config.ts";
import { emitRpc } from "./emit.ts";
import { emitRpcJson } from "./emit_json.ts";
import { parseProto, type ProtoFile } from "./proto_parser.ts";
import { buildSchema, type Schema } from "./schema.ts";

/** The command that regenerates rpc.ts, as its header says. */
export const REGENERATE = "deno run -A server/pb/gen/main.ts";

/** The generated file. */
export const RPC_TS: string = fileURLToPath(new URL("../rpc.ts", import.meta.url));

/** The generated JSON mapping. */
export const RPC_JSON_TS: string = fileURLToPath(new URL("../rpc_json.ts", import.meta.url));

/** etcd's .proto files, resolved from the etcd3 package's entry point (node_modules may live anywhere). */
export function protoDir(): string {
  return fileURLToPath(new URL("../proto/", import.meta.resolve("etcd3")));
}

/** Reads and parses the configured .proto files. */
export async function loadProtos(config: GenConfig = CONFIG, dir: string = protoDir()): Promise<ProtoFile[]> {
  return await Promise.all(
    config.files.map(async (name) => parseProto(name, await Deno.readTextFile(`${dir}/${name}`))),
  );
}

/** The resolved schema of the configured messages (the codec's tests build random messages from it). */
export async function loadSchema(config: GenConfig = CONFIG): Promise<Schema> {
  return buildSchema(await loadProtos(config), config);
}

/** Formats TypeScript source with `deno fmt`, under the project's settings (deno.json). */
export async function format(source: string): Promise<string> {
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=ts", "-"],
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(source));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`deno fmt failed: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout);
}

/** The text of rpc.ts for `config`, formatted, without touching the file. */
export async function generate(config: GenConfig = CONFIG): Promise<string> {
  const schema = await loadSchema(config);
  return await format(
    emitRpc(schema, { files: config.files, from: "node_modules/etcd3/proto/", command: REGENERATE }),
  );
}

/** The text of rpc_json.ts for `config`, formatted, without touching the file. */
export async function generateJson(config: GenConfig = CONFIG): Promise<string> {
  const protos = await loadProtos(config);
  const schema = buildSchema(protos, config);
  const packages = [...new Set(protos.map((p) => p.package))];
  return await format(
    emitRpcJson(
      schema,
      { files: config.files, from: "node_modules/etcd3/proto/", command: REGENERATE },
      packages,
    ),
  );
}

if (import.meta.main) {
  const outputs: [string, string, string][] = [
    [RPC_TS, "server/pb/rpc.ts", await generate()],
    [RPC_JSON_TS, "server/pb/rpc_json.ts", await generateJson()],
  ];
  let stale = false;
  for (const [path, name, text] of outputs) {
    if (Deno.args.includes("--check")) {
      const current = await Deno.readTextFile(path).catch(() => "");
      if (current !== text) {
        console.error(`${name} is out of date; run: ${REGENERATE}`);
        stale = true;
      } else console.log(`${name} is up to date`);
    } else {
      await Deno.writeTextFile(path, text);
      console.log(`wrote ${name} (${text.split("\n").length - 1} lines)`);
    }
  }
  if (stale) Deno.exit(1);
}
