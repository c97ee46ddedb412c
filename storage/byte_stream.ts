/**
 * Large byte images (snapshots) produced piece by piece, so that writing one to disk never needs a copy of
 * the whole image in memory.
 *
 * @module
 */

/**
 * `size` bytes, delivered in order by `chunks()`. A producer may refill the same buffer for the next
 * chunk, so a consumer must be done with a chunk before it asks for the next one.
 */
export interface ByteStream {
  readonly size: number;
  chunks(): Iterable<Uint8Array>;
}

/** A stream over bytes already in memory. */
export function streamOf(...parts: Uint8Array[]): ByteStream {
  let size = 0;
  for (const p of parts) size += p.length;
  return { size, chunks: () => parts };
}

/** The streams one after the other. */
export function concatStreams(...streams: ByteStream[]): ByteStream {
  let size = 0;
  for (const s of streams) size += s.size;
  return {
    size,
    *chunks() {
      for (const s of streams) yield* s.chunks();
    },
  };
}

/** The whole stream in one new buffer; throws if it does not deliver exactly `size` bytes. */
export function collectBytes(stream: ByteStream): Uint8Array {
  const out = new Uint8Array(stream.size);
  let pos = 0;
  for (const c of stream.chunks()) {
    if (pos + c.length > out.length) {
      throw new Error(`byte stream: more than the announced ${stream.size} bytes`);
    }
    out.set(c, pos);
    pos += c.length;
  }
  if (pos !== out.length) throw new Error(`byte stream: ${pos} bytes, ${stream.size} announced`);
  return out;
}
