/**
 * Key paths as etcd's v2 store sees them: Go's `path.Clean("/" + key)`.
 *
 * @module
 */

/** Go's `path.Clean`: one slash between elements, no `.`, `..` resolved, no trailing slash. */
export function goPathClean(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

/** A v2 key in its stored form: `path.Clean(path.Join("/", key))`, so always absolute. */
export function cleanKey(key: string): string {
  return goPathClean("/" + key);
}
