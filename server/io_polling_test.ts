import { assert, assertEquals } from "../tests/assert.ts";
import {
  environmentWithIoPolling,
  IO_POLLING_VALUE,
  IO_POLLING_VARIABLE,
  ioPollingAdvice,
  splitNulTerminated,
} from "./io_polling.ts";

/** NUL-terminated strings as text. */
function strings(bytes: Uint8Array): string[] {
  const dec = new TextDecoder();
  return splitNulTerminated(bytes).map((b) => dec.decode(b));
}

Deno.test("io polling: a command line is read back from /proc's NUL-separated form, spaces and empty arguments kept", () => {
  const bytes = new TextEncoder().encode("deno\0run\0--allow-all\0main.ts\0--name\0a b\0\0");
  assertEquals(strings(bytes), ["deno", "run", "--allow-all", "main.ts", "--name", "a b", ""]);
  assertEquals(strings(new TextEncoder().encode("/usr/bin/etcd-ts\0")), ["/usr/bin/etcd-ts"]);
});

Deno.test("io polling: the new environment is the old one byte for byte, with each variable the user did not set added", () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const latin1 = new Uint8Array([...enc.encode("LABEL="), 0xe9, 0]); // not UTF-8: must pass unchanged
  const environ = new Uint8Array([
    ...enc.encode(`PATH=/bin\0ETCD_NAME=a=b\0`),
    ...latin1,
    ...enc.encode(`${IO_POLLING_VARIABLE}X=2\0`),
  ]);
  const text = (out: Uint8Array[]) => out.map((e) => dec.decode(e)).filter((e) => !e.startsWith("LABEL="));
  const out = environmentWithIoPolling(environ, { MALLOC_ARENA_MAX: "1" });
  assertEquals(text(out), [
    "PATH=/bin",
    "ETCD_NAME=a=b",
    `${IO_POLLING_VARIABLE}X=2`,
    `${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`,
    "MALLOC_ARENA_MAX=1",
  ]);
  assertEquals(out[2], latin1.subarray(0, latin1.length - 1));

  // values the user gave are kept, once each
  const given = new Uint8Array([
    ...environ,
    ...enc.encode(`MALLOC_ARENA_MAX=4\0${IO_POLLING_VARIABLE}=61\0`),
  ]);
  assertEquals(text(environmentWithIoPolling(given, { MALLOC_ARENA_MAX: "1" })), [
    "PATH=/bin",
    "ETCD_NAME=a=b",
    `${IO_POLLING_VARIABLE}X=2`,
    "MALLOC_ARENA_MAX=4",
    `${IO_POLLING_VARIABLE}=61`,
  ]);
});

Deno.test("io polling: a warning only when the variable is unset; any value the user chose is left alone", () => {
  const advice = ioPollingAdvice(() => undefined);
  assert(advice !== undefined && advice.includes(`${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`), advice);
  assertEquals(ioPollingAdvice((n) => n === IO_POLLING_VARIABLE ? "1" : undefined), undefined);
  assertEquals(ioPollingAdvice((n) => n === IO_POLLING_VARIABLE ? "8" : undefined), undefined);
});
