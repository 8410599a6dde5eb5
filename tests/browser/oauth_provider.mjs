// A mock OAuth2 provider for the browser journeys: node:http on 127.0.0.1, with a small
// consent page at /authorize (a "Continue as <name>" button, a form GET to /approve that
// redirects back to the client), a token endpoint that checks client credentials, single-
// use codes, the redirect URI and PKCE (S256), and a user-info endpoint.
//
//   const provider = await startProvider({ profile: { sub, email, email_verified, name } });
//   provider.url          // http://127.0.0.1:<port>
//   provider.env("LOCAL", "Local ID")   // the KETTLE_OAUTH_LOCAL_* variables for it
//   provider.setProfile({ ... })        // who the next consent signs in as
//   provider.received                   // { authorizations, exchangesVerified, exchangesRefused }
//   await provider.close()

import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";

export const CLIENT_ID = "kettle-browser-client";
export const CLIENT_SECRET = "browser-mock-secret-8d2e";

const CODE_LIFETIME_MS = 60_000;

function random() {
  return randomBytes(24).toString("base64url");
}

/** BASE64URL-NOPAD(SHA256(verifier)): the S256 code challenge. */
export function s256(verifier) {
  return createHash("sha256").update(verifier).digest("base64url");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function send(response, status, type, body, headers = {}) {
  response.writeHead(status, { "content-type": type, "cache-control": "no-store", ...headers });
  response.end(body);
}

function json(response, status, body) {
  send(response, status, "application/json", JSON.stringify(body));
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => resolve(body));
    request.on("error", reject);
  });
}

/** Client credentials from HTTP Basic (each part form-encoded) or the form. */
function clientCredentials(request, form) {
  const header = request.headers.authorization ?? "";
  if (header.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    const part = (s) => decodeURIComponent(s.replace(/\+/g, " "));
    return { id: part(decoded.slice(0, colon)), secret: part(decoded.slice(colon + 1)) };
  }
  if (form.has("client_id")) return { id: form.get("client_id"), secret: form.get("client_secret") };
  return null;
}

export async function startProvider({ profile } = {}) {
  let currentProfile = profile ?? { sub: "subject-1", email: "someone@example.org", email_verified: true, name: "Someone" };
  // Consent requests waiting for the button: id → the authorisation request.
  const pending = new Map();
  const codes = new Map();
  const tokens = new Map();
  const received = { authorizations: [], exchangesVerified: 0, exchangesRefused: [] };

  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url, "http://127.0.0.1");
      if (request.method === "GET" && url.pathname === "/authorize") {
        const query = url.searchParams;
        received.authorizations.push(Object.fromEntries(query));
        const redirectUri = query.get("redirect_uri") ?? "";
        if (query.get("client_id") !== CLIENT_ID) return send(response, 400, "text/plain", "unknown client_id");
        if (!redirectUri.startsWith("http://127.0.0.1:")) return send(response, 400, "text/plain", "redirect_uri is not registered");
        if (query.get("response_type") !== "code") return send(response, 400, "text/plain", "response_type must be code");
        if (query.get("code_challenge_method") !== "S256" || (query.get("code_challenge") ?? "").length < 43) {
          return send(response, 400, "text/plain", "PKCE with S256 is required");
        }
        const id = random();
        pending.set(id, { redirectUri, state: query.get("state") ?? "", challenge: query.get("code_challenge") });
        const name = escapeHtml(currentProfile.name ?? currentProfile.email ?? "you");
        return send(
          response,
          200,
          "text/html; charset=utf-8",
          `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in – Mock ID</title></head>
<body>
<main>
<h1>Mock ID</h1>
<p>Kettle would like to know who you are.</p>
<form method="get" action="/approve">
<input type="hidden" name="request" value="${id}">
<button type="submit">Continue as ${name}</button>
</form>
</main>
</body>
</html>`,
        );
      }
      if (request.method === "GET" && url.pathname === "/approve") {
        const waiting = pending.get(url.searchParams.get("request") ?? "");
        if (!waiting) return send(response, 400, "text/plain", "no such request");
        pending.delete(url.searchParams.get("request"));
        const code = random();
        codes.set(code, { ...waiting, profile: { ...currentProfile }, issued: Date.now(), used: false });
        const target = new URL(waiting.redirectUri);
        target.searchParams.append("code", code);
        target.searchParams.append("state", waiting.state);
        response.writeHead(303, { location: target.toString() });
        return response.end();
      }
      if (request.method === "POST" && url.pathname === "/token") {
        const form = new URLSearchParams(await readBody(request));
        const credentials = clientCredentials(request, form);
        const refuse = (error, description, status = 400) => {
          received.exchangesRefused.push(description);
          json(response, status, { error, error_description: description });
        };
        if (!credentials || credentials.id !== CLIENT_ID || credentials.secret !== CLIENT_SECRET) {
          return refuse("invalid_client", "bad client credentials", 401);
        }
        if (form.get("grant_type") !== "authorization_code") return refuse("unsupported_grant_type", "grant_type");
        const grant = codes.get(form.get("code") ?? "");
        if (!grant) return refuse("invalid_grant", "unknown code");
        if (grant.used) return refuse("invalid_grant", "code already used");
        grant.used = true;
        if (Date.now() - grant.issued > CODE_LIFETIME_MS) return refuse("invalid_grant", "code expired");
        if (form.get("redirect_uri") !== grant.redirectUri) return refuse("invalid_grant", "redirect_uri does not match");
        if (s256(form.get("code_verifier") ?? "") !== grant.challenge) {
          return refuse("invalid_grant", "code_verifier does not match the code_challenge");
        }
        received.exchangesVerified += 1;
        const accessToken = random();
        tokens.set(accessToken, grant.profile);
        return json(response, 200, { access_token: accessToken, token_type: "Bearer", expires_in: 3600 });
      }
      if (request.method === "GET" && url.pathname === "/userinfo") {
        const bearer = (request.headers.authorization ?? "").replace(/^Bearer /, "").trim();
        const found = tokens.get(bearer);
        if (!found) {
          response.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"' });
          return response.end();
        }
        return json(response, 200, found);
      }
      send(response, 404, "text/plain", "not found");
    } catch (error) {
      send(response, 500, "text/plain", String(error));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;

  return {
    url,
    received,
    setProfile(next) {
      currentProfile = next;
    },
    /** The KETTLE_OAUTH_<NAME>_* variables for a provider served by this mock. */
    env(name, label) {
      const prefix = `KETTLE_OAUTH_${name}_`;
      return {
        [`${prefix}CLIENT_ID`]: CLIENT_ID,
        [`${prefix}CLIENT_SECRET`]: CLIENT_SECRET,
        [`${prefix}AUTH_URL`]: `${url}/authorize`,
        [`${prefix}TOKEN_URL`]: `${url}/token`,
        [`${prefix}USERINFO_URL`]: `${url}/userinfo`,
        ...(label ? { [`${prefix}LABEL`]: label } : {}),
      };
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
