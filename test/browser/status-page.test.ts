// The status page in a real browser (Debian's chromium, driven by playwright-core): a
// person signs in, reads the page, fires a task, freezes a partition, retries a dead
// letter, and the page fits a 400 px wide screen.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { event } from "../support/runtime.ts";
import { testServers, type TestServer } from "../support/server.ts";

const server = testServers();
const CHROMIUM = "/usr/bin/chromium";
let browser: Browser;
const pages: Page[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`The browser tests need Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run installs it).`);
  // launch() gives the browser a fresh profile (user data dir) of its own, removed at close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.context().close()));
});

/** A fresh browser context (no cookies) showing the status page, signed in through its form. */
async function signedIn(s: TestServer, viewport = { width: 1100, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  pages.push(page);
  await page.goto(`${s.adminUrl}/`);
  await page.getByLabel("Admin token").fill(s.adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Partitions" }).waitFor();
  return page;
}

async function activeCounter(s: TestServer): Promise<string> {
  const id = await s.deploy("counter");
  await s.api("POST", `/api/partitions/${id}/activate`);
  return id;
}

/** A recorder whose async push fails once and is dead-lettered after its one attempt. */
async function deadLetter(s: TestServer): Promise<string> {
  const id = await s.deploy("recorder");
  await s.api("POST", `/api/partitions/${id}/activate`);
  const spec = { name: "flaky", push: true, payload: "fail:1", retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 } };
  await s.host.partitions.deliver(id, event("register", JSON.stringify([spec])));
  const { body } = await s.api("GET", `/api/tasks?partition=${id}`);
  const { delivery } = await (await fetch(`${s.pushUrl}${body.tasks[0].pushUrl}`, { method: "POST", headers: { prefer: "respond-async" } })).json();
  await s.waitFor((e) => e.type === "dead-lettered" && e.delivery === delivery);
  return delivery as string;
}

describe("the status page in a browser", () => {
  it("shows a wrong token as an error, then signs in and shows the partition, its tasks, push URL and guest logs", async () => {
    const s = await server();
    await activeCounter(s);
    const page = await (await browser.newContext()).newPage();
    pages.push(page);
    await page.goto(`${s.adminUrl}/`);
    await page.getByLabel("Admin token").fill("not-the-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert");
    await expect(alert.textContent()).resolves.toContain("That token is wrong");
    expect(await alert.evaluate((el) => getComputedStyle(el).color)).toBe("rgb(138, 31, 17)");
    await page.getByLabel("Admin token").fill(s.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    const card = page.getByRole("region", { name: "counter" });
    await expect(card.locator(".state").textContent()).resolves.toBe("idle");
    const text = (await card.innerText()).replace(/\s+/g, " ");
    expect(text).toContain("heartbeat every 1 min 10");
    expect(text).toMatch(new RegExp(`inbox on push 100 ${s.pushUrl.replace(/[.]/g, "\\.")}/push/\\S+`));
    expect(text).toMatch(/\d\d:\d\d info counter activated \(fresh\), count=0/);
  });

  it("fires a task from its button and shows how it went", async () => {
    const s = await server();
    await activeCounter(s);
    const page = await signedIn(s);
    await page.getByRole("button", { name: "Fire heartbeat" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toMatch(/^Fired heartbeat: ok in [\d.]+ m?s\.$/);
    expect(await page.getByRole("region", { name: "counter" }).innerText()).toContain("1 delivery ·");
  });

  it("freezes a live partition from its button, which then offers Activate instead", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const page = await signedIn(s);
    await page.getByRole("button", { name: "Freeze counter" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toMatch(/^Froze counter \(snapshot [\d.]+ KiB\)\.$/);
    expect(s.host.partitions.stateOf(id)).toBe("frozen");
    const card = page.getByRole("region", { name: "counter" });
    await expect(card.locator(".state").textContent()).resolves.toBe("frozen");
    expect(await card.getByRole("button", { name: "Freeze counter" }).count()).toBe(0);
    await card.getByRole("button", { name: "Activate counter" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toBe("Activated counter (rehydrated).");
  });

  it("retries a dead letter from its button, after which the list is empty", async () => {
    const s = await server();
    const delivery = await deadLetter(s);
    const page = await signedIn(s);
    const row = page.getByRole("row").filter({ has: page.getByRole("button", { name: "Retry flaky" }) });
    expect((await row.innerText()).replace(/\s+/g, " ")).toContain("attempt 1 of flaky failed on purpose");
    const retried = s.waitFor((e) => e.type === "delivered" && e.delivery === delivery && e.attempt === 2);
    await row.getByRole("button", { name: "Retry flaky" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toBe(`Retrying flaky (dead letter ${delivery}).`);
    await retried;
    await page.getByRole("link", { name: "Pause refresh" }).click();
    expect(await page.getByText("No dead letters.").isVisible()).toBe(true);
    expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);
  });

  it("fits a 400 px wide screen with nothing wider than it", async () => {
    const s = await server();
    const id = await activeCounter(s);
    await deadLetter(s);
    await s.api("POST", `/api/partitions/${id}/freeze`);
    await s.api("POST", `/api/partitions/${id}/activate`);
    const page = await signedIn(s, { width: 400, height: 800 });
    expect(await page.evaluate(() => document.scrollingElement!.scrollWidth)).toBeLessThanOrEqual(400);
    expect(await page.getByRole("button", { name: "Fire heartbeat" }).isVisible()).toBe(true);
    const dir = join(tmpdir(), "dormant-browser");
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: join(dir, "status-400.png"), fullPage: true });
  });
});
