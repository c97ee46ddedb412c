/**
 * The errors of etcd's v2 keys API: the numeric `errorCode`, the fixed message for each code, the HTTP
 * status etcd answers with, and the JSON body it writes (`{"errorCode":..,"message":..,"cause":..,"index":..}`
 * followed by a newline, `cause` left out when empty, strings escaped as Go's encoder does).
 *
 * @module
 */
import { goJsonString } from "./go_json.ts";

/** The v2 error codes this project produces, by etcd's names. */
export const V2ErrorCode = {
  KeyNotFound: 100,
  TestFailed: 101,
  NotFile: 102,
  NotDir: 104,
  NodeExist: 105,
  RootReadOnly: 107,
  DirNotEmpty: 108,
  ValueRequired: 200,
  PrevValueRequired: 201,
  TtlNaN: 202,
  IndexNaN: 203,
  InvalidField: 209,
  InvalidForm: 210,
  RefreshValue: 211,
  RefreshTtlRequired: 212,
  RaftInternal: 300,
  LeaderElect: 301,
  WatcherCleared: 400,
  EventIndexCleared: 401,
} as const;

const MESSAGES: Readonly<Record<number, string>> = {
  100: "Key not found",
  101: "Compare failed",
  102: "Not a file",
  103: "Reached the max number of peers in the cluster",
  104: "Not a directory",
  105: "Key already exists",
  106: "The prefix of given key is a keyword in etcd",
  107: "Root is read only",
  108: "Directory not empty",
  109: "Peer address has existed",
  110: "The request requires user authentication",
  200: "Value is Required in POST form",
  201: "PrevValue is Required in POST form",
  202: "The given TTL in POST form is not a number",
  203: "The given index in POST form is not a number",
  204: "Value or TTL is required in POST form",
  205: "The given timeout in POST form is not a number",
  206: "Name is required in POST form",
  207: "Index or value is required",
  208: "Index and value cannot both be specified",
  209: "Invalid field",
  210: "Invalid POST form",
  211: "Value provided on refresh",
  212: "A TTL must be provided on refresh",
  300: "Raft Internal Error",
  301: "During Leader Election",
  400: "watcher is cleared due to etcd recovery",
  401: "The event in requested index is outdated and cleared",
  402: "Standby Internal Error",
  403: "Invalid active size",
  404: "Standby remove delay",
  500: "Client Internal Error",
};

/** HTTP statuses that differ from the default 400. */
const STATUSES: Readonly<Record<number, number>> = {
  100: 404,
  101: 412,
  102: 403,
  105: 412,
  108: 403,
  110: 401,
  300: 500,
  301: 500,
};

/** The JSON object of a v2 error, fields in etcd's order. */
export interface V2ErrorJson {
  errorCode: number;
  message: string;
  cause?: string;
  index: number;
}

/**
 * A v2 keys API error. `errorCode` is etcd's number, `message` etcd's fixed text for it, `cause` the
 * detail (often the key), `index` the store index at the time (0 for request-parsing errors, as etcd
 * writes them) and `status` the HTTP status to answer with.
 */
export class V2Error extends Error {
  /** Stable code of this error class; the v2 number is in `errorCode`. */
  readonly code = "V2";
  /** etcd's v2 error number (100 Key not found, ...). */
  readonly errorCode: number;
  /** The detail etcd puts in the `cause` field; empty means the field is left out. */
  override readonly cause: string;
  /** The store index reported in the body and in X-Etcd-Index. */
  index: number;

  constructor(errorCode: number, cause = "", index = 0) {
    const message = MESSAGES[errorCode] ?? "";
    super(message);
    this.name = "V2Error";
    this.errorCode = errorCode;
    this.cause = cause;
    this.index = index;
  }

  /** The HTTP status etcd answers this error with (400 unless the code has its own). */
  get status(): number {
    return STATUSES[this.errorCode] ?? 400;
  }

  /** The body's fields in etcd's order; `cause` is absent when empty. */
  toJSON(): V2ErrorJson {
    if (this.cause === "") return { errorCode: this.errorCode, message: this.message, index: this.index };
    return { errorCode: this.errorCode, message: this.message, cause: this.cause, index: this.index };
  }

  /** The exact response body etcd writes for this error, newline included. */
  body(): string {
    let s = `{"errorCode":${this.errorCode},"message":${goJsonString(this.message)}`;
    if (this.cause !== "") s += `,"cause":${goJsonString(this.cause)}`;
    return s + `,"index":${this.index}}\n`;
  }
}

/** The etcd message for a v2 error code ("" for an unknown code). */
export function v2ErrorMessage(errorCode: number): string {
  return MESSAGES[errorCode] ?? "";
}

/** 100 Key not found; `cause` is the key. */
export function keyNotFound(key: string, index: number): V2Error {
  return new V2Error(V2ErrorCode.KeyNotFound, key, index);
}

/** 101 Compare failed; `cause` is etcd's `[a != b]` text. */
export function testFailed(cause: string, index: number): V2Error {
  return new V2Error(V2ErrorCode.TestFailed, cause, index);
}

/** 102 Not a file. */
export function notFile(key: string, index: number): V2Error {
  return new V2Error(V2ErrorCode.NotFile, key, index);
}

/** 104 Not a directory; `cause` is the path of the file in the way. */
export function notDir(key: string, index: number): V2Error {
  return new V2Error(V2ErrorCode.NotDir, key, index);
}

/** 105 Key already exists. */
export function nodeExist(key: string, index: number): V2Error {
  return new V2Error(V2ErrorCode.NodeExist, key, index);
}

/** 107 Root is read only (etcd's cause is always "/"). */
export function rootReadOnly(index: number): V2Error {
  return new V2Error(V2ErrorCode.RootReadOnly, "/", index);
}

/** 108 Directory not empty. */
export function dirNotEmpty(key: string, index: number): V2Error {
  return new V2Error(V2ErrorCode.DirNotEmpty, key, index);
}

/** 401 The event in requested index is outdated and cleared, with etcd's `[oldest/asked]` cause. */
export function eventIndexCleared(oldest: number, asked: number, index: number): V2Error {
  return new V2Error(
    V2ErrorCode.EventIndexCleared,
    `the requested history has been cleared [${oldest}/${asked}]`,
    index,
  );
}

/** A request-parsing error (index 0, as etcd's NewRequestError). */
export function requestError(errorCode: number, cause: string): V2Error {
  return new V2Error(errorCode, cause, 0);
}
