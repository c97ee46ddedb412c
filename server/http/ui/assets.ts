/**
 * The dashboard's files, embedded in the module graph as text imports, so that `deno compile` puts them in
 * the executable like any other module (no file is read at run time, no CDN is needed): the page, its script
 * and styles from this folder, and uPlot's browser build and stylesheet from the `uplot` npm package.
 *
 * @module
 */
import indexHtml from "./index.html" with { type: "text" };
import appJs from "./app.js" with { type: "text" };
import ratesJs from "./rates.js" with { type: "text" };
import styleCss from "./style.css" with { type: "text" };
// the full specifier, the same as deno.json's "uplot" (so the lock needs nothing new): a subpath of the bare
// name resolves through deno.json but not through the test import map (test_imports.json, which has no
// "uplot/" entry), and the server and its tests must load the same module
// deno-lint-ignore no-import-prefix
import uplotJs from "npm:uplot@^1.6.32/dist/uPlot.iife.min.js" with { type: "text" };
// deno-lint-ignore no-import-prefix
import uplotCss from "npm:uplot@^1.6.32/dist/uPlot.min.css" with { type: "text" };

/** One file the dashboard serves. */
export interface UiAsset {
  /** The file's name under `/ui/`. */
  readonly name: string;
  /** Its `Content-Type`. */
  readonly contentType: string;
  /** Its content. */
  readonly text: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The page itself, served at `/ui` and `/ui/`; `{{...}}` placeholders are filled in by the handler. */
export const INDEX_HTML: string = indexHtml;

/** The static files the page loads, by name under `/ui/`. */
export const UI_ASSETS: readonly UiAsset[] = [
  { name: "app.js", contentType: JS, text: appJs },
  { name: "rates.js", contentType: JS, text: ratesJs },
  { name: "style.css", contentType: CSS, text: styleCss },
  { name: "uplot.js", contentType: JS, text: uplotJs },
  { name: "uplot.css", contentType: CSS, text: uplotCss },
];
