// Dormant inside an application of your own: the application keeps its routes, Dormant
// adds its push routes (/push/<token>) and, with an admin token, the operator's routes
// under /admin (admin API at /admin/api, metrics at /admin/metrics) behind the same door
// as `dormant serve`'s admin port: the token, and only localhost, IP addresses or the
// host names given in http.adminHostnames.
//
//   DORMANT_ADMIN_TOKEN=$(openssl rand -base64 32) npx tsx examples/embed.ts
//   curl -H "authorization: Bearer $DORMANT_ADMIN_TOKEN" --data-binary @guest.wasm localhost:3000/admin/api/components
//
// test/http/embed.test.ts runs it: it deploys a guest through /admin/api and pushes to it
// through the application.
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { createDormant, type Dormant, type DormantOptions } from "dormant";

export async function createApp(options: DormantOptions = {}): Promise<{ app: Hono; dormant: Dormant }> {
  const dormant = await createDormant({ dataDir: ".dormant-embed", ...options });
  const app = new Hono();
  app.get("/", (c) => c.text("my application\n"));
  // Mounted at the root: push URLs are /push/<token>, as the admin API reports them.
  app.route("/", dormant.app);
  return { app, dormant };
}

if (import.meta.filename === process.argv[1]) {
  const token = process.env.DORMANT_ADMIN_TOKEN;
  const { app, dormant } = await createApp(token ? { admin: { token } } : {});
  const server = serve({ fetch: app.fetch, port: 3000 }, () => console.log(`listening on http://localhost:3000${token ? " (admin routes under /admin)" : ""}`));
  process.once("SIGINT", async () => {
    server.close();
    await dormant.close(); // live partitions are frozen to storage first
  });
}
