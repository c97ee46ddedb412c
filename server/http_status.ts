/**
 * HTTP/1.1 reason phrases, for the status lines the client port's HTTP/1.1 answers and the peer port's
 * handlers write.
 *
 * @module
 */

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  411: "Length Required",
  413: "Request Entity Too Large",
  415: "Unsupported Media Type",
  421: "Misdirected Request",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** The reason phrase of `status`; `fallback` for one not listed. */
export function reasonPhrase(status: number, fallback = "Status"): string {
  return REASONS[status] ?? fallback;
}
