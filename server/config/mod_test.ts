import { assertEquals } from "../../tests/assert.ts";
import * as config from "./mod.ts";

Deno.test("config: the room's entry exports its public API, and nothing of its insides", () => {
  assertEquals(Object.keys(config).sort(), [
    "ConfigError",
    "NOT_YET_IMPLEMENTED",
    "SETTINGS_WITHOUT_EFFECT_YET",
    "TLS12_CIPHER_SUITES",
    "defaultConfig",
    "formatUrl",
    "parseCommandLine",
    "parseDurationMs",
    "parseInitialCluster",
    "tlsWarnings",
    "validateConfig",
  ]);
});
