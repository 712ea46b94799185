// The API client: fetch() against this server with the user's key (GA dialect), the Anthropic error
// envelope turned into ApiError, and the ids of the requests this tab made (so the request log can tell
// them from other clients').
import { state } from "./state.js";

export const API_VERSION = "2026-10-21";

export class ApiError extends Error {
  constructor(status, type, message, requestId) {
    super(message);
    this.status = status;
    this.type = type;
    this.requestId = requestId;
  }
}

export function errorFromBody(status, text, requestId) {
  let type = "api_error";
  let message = `The server answered ${status}.`;
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      type = body.error.type || type;
      message = body.error.message || message;
    }
    requestId = body.request_id || requestId;
  } catch (_) {
    /* not an error envelope: keep the generic message */
  }
  return new ApiError(status, type, message, requestId);
}

function headers(extra) {
  // x-filesapi-proxy: downloads come through this server even when it could redirect them to
  // the bucket (which a browser could only follow with CORS set up there).
  return { "x-api-key": state.key, "anthropic-version": API_VERSION, "x-filesapi-proxy": "1", ...extra };
}

// fetch() against this server with the key. Returns the parsed JSON, or the Response with raw.
export async function api(path, { method = "GET", extraHeaders, raw = false } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(extraHeaders),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch (err) {
    throw new ApiError(0, "network_error", `The server did not answer (${err.message}).`, null);
  }
  const requestId = response.headers.get("request-id");
  if (requestId) rememberOwn(requestId);
  if (!response.ok) throw errorFromBody(response.status, await response.text(), requestId);
  return raw ? response : response.json();
}

export function rememberOwn(requestId) {
  state.ownRequestIds.add(requestId);
  if (state.ownRequestIds.size > 2000) {
    const first = state.ownRequestIds.values().next().value;
    state.ownRequestIds.delete(first);
  }
}
