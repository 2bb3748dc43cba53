// `dormant new <dir> --template js|ts|wat`: a guest to start from, with its README, a test
// on the test kit (dormant/testing) and a package.json whose scripts build it (and
// type-check it, for TS) with this Dormant and run the test.
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DormantError, PACKAGE_ROOT } from "../../runtime/index.ts";

const HELP = `Usage: dormant new <dir> [--template js|ts|wat]

Writes a guest to start from into <dir> (which must be empty or absent): its source, a
README that says how to build, test, deploy and push to it, a test (guest.test.js, on
Dormant's test kit, dormant/testing) and a package.json whose scripts build it (npm run
build), test it (npm install once, then npm test) and, for TypeScript, type-check it
against the dormant:host declarations Dormant ships (npm run check).

Options:
  --template NAME   js (default), ts or wat
  -h, --help        This help`;

const TEMPLATES = ["js", "ts", "wat"] as const;
type Template = (typeof TEMPLATES)[number];

const JS_GUEST = `// A Dormant guest: a cron task and a push task (see README.md).
import { register } from "dormant:host/background-tasks@0.1.0";

let seen = 0;

export const lifecycle = {
  onActivate(reason) {
    // The host keeps registrations; only a fresh partition needs to make them.
    if (reason !== "fresh") return;
    register({ name: "every-minute", trigger: { tag: "cron", val: { expression: "* * * * *" } },
               entry: "minute", payload: new Uint8Array(), priority: 10, outlivePartition: false });
    register({ name: "inbox", trigger: { tag: "push" },
               entry: "push", payload: new Uint8Array(), priority: 100, outlivePartition: false });
  },
};

export const handler = {
  onTask(event) {
    seen += 1;
    console.log(\`\${event.entry} #\${seen}\`);
    if (!event.request) return undefined;
    const body = new TextDecoder().decode(event.request.body);
    return { status: 200, headers: [["content-type", "text/plain"]], body: new TextEncoder().encode(\`hello #\${seen}: \${body}\\n\`) };
  },
};
`;

const SOURCE: Record<Template, string> = { js: "guest.js", ts: "guest.ts", wat: "guest.wat" };

const TEST_HEAD = `// The guest's tests (npm test): the test kit runs guest.wasm in-process on a host whose
// clock moves only when a test says. node:test here; the kit works the same from vitest.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { createTestHost } from "dormant/testing";

let t;
beforeEach(async () => {
  t = await createTestHost({ guest: "guest.wasm", start: "2030-01-01T00:00:00Z" });
});
afterEach(() => t.close());
`;

/** The tests of each template's guest, in the words of its behaviour. */
const TESTS: Record<Template, string> = {
  js: `${TEST_HEAD}
test("registers a cron task and a push task when first activated", () => {
  assert.deepEqual(
    t.tasks().map((task) => [task.name, task.trigger.tag]),
    [["every-minute", "cron"], ["inbox", "push"]],
  );
});

test("answers a push with what it was sent", async () => {
  const reply = await t.push("inbox", { body: "hi" });
  assert.equal(reply.status, 200);
  assert.equal(reply.headers.get("content-type"), "text/plain");
  assert.equal(await reply.text(), "hello #1: hi\\n");
});

test("runs its cron task every minute, and logs each run", async () => {
  await t.advance("3m");
  assert.deepEqual(t.logs.map((line) => [line.level, line.message]), [["info", "minute #1"], ["info", "minute #2"], ["info", "minute #3"]]);
});

test("keeps its count across a freeze: the next push wakes it where it was", async () => {
  await t.push("inbox");
  await t.freeze();
  assert.equal(t.state(), "frozen");
  assert.equal(await (await t.push("inbox", { body: "again" })).text(), "hello #2: again\\n");
});
`,
  ts: `${TEST_HEAD}
test("registers a cron task and a push task when first activated", () => {
  assert.deepEqual(
    t.tasks().map((task) => [task.name, task.trigger.tag]),
    [["every-minute", "cron"], ["greet", "push"]],
  );
  assert.deepEqual(t.tasks()[0].nextFire, new Date("2030-01-01T00:01:00Z"));
});

test("greets whoever a push names, and says when its cron task last ran", async () => {
  const reply = await t.push("greet", { body: "Ada" });
  assert.equal(reply.status, 200);
  assert.equal(await reply.text(), "hello, Ada (greeting #1; no minute yet)\\n");
  await t.advance("1m");
  assert.equal(await (await t.push("greet")).text(), \`hello, world (greeting #2; last minute at \${Date.parse("2030-01-01T00:01:00Z")})\\n\`);
});

test("logs each minute at level info", async () => {
  await t.advance("2m");
  assert.deepEqual(t.logs.filter((line) => line.message.startsWith("minute")).map((line) => line.level), ["info", "info"]);
});

test("keeps its greetings across a freeze: the next push wakes it where it was", async () => {
  await t.push("greet");
  await t.freeze();
  assert.equal(t.state(), "frozen");
  assert.match(await (await t.push("greet")).text(), /greeting #2/);
});
`,
  wat: `${TEST_HEAD}
const text = (result) => new TextDecoder().decode(result.reply.body);

test("answers each event with the count of events so far", async () => {
  assert.equal(text(await t.call("anything")), "1");
  assert.equal(text(await t.call("anything")), "2");
});

test("keeps its count across a freeze: the next event wakes it where it was", async () => {
  await t.call("anything");
  await t.freeze();
  assert.equal(t.state(), "frozen");
  assert.equal(text(await t.call("anything")), "2");
});
`,
};

export async function newGuest(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { template: { type: "string", default: "js" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return void console.log(HELP);
  const [target] = positionals;
  if (!target) throw new DormantError("client", `dormant new needs a folder: dormant new <dir> --template js|ts|wat.`);
  const template = values.template as Template;
  if (!TEMPLATES.includes(template)) throw new DormantError("client", `--template must be js, ts or wat; got ${JSON.stringify(values.template)}.`);
  const dir = resolve(target);
  const existing = await readdir(dir).catch(() => []);
  if (existing.length > 0) throw new DormantError("client", `${dir} is not empty; give dormant new a new or empty folder.`);
  await mkdir(dir, { recursive: true });

  const source = SOURCE[template];
  const dormant = relative(dir, join(PACKAGE_ROOT, "bin", "dormant.js"));
  const types = relative(dir, join(PACKAGE_ROOT, "wit", "types"));
  if (template === "js") await writeFile(join(dir, source), JS_GUEST);
  if (template === "ts") {
    const example = await readFile(join(PACKAGE_ROOT, "guests", "hello-ts", "hello.ts"), "utf8");
    await writeFile(join(dir, source), example.replace(/^(\/\/.*\n)+/, "// A Dormant guest in TypeScript: a cron task and a push task (see README.md).\n"));
    const tsconfig = JSON.parse(await readFile(join(PACKAGE_ROOT, "guests", "hello-ts", "tsconfig.json"), "utf8"));
    tsconfig.files = [source, join(types, "guest.d.ts"), join(types, "guest-globals.d.ts")];
    await writeFile(join(dir, "tsconfig.json"), `${JSON.stringify(tsconfig, null, 2)}\n`);
  }
  if (template === "wat") await copyFile(join(PACKAGE_ROOT, "guests", "wat-minimal", "wat-minimal.wat"), join(dir, source));

  const name =
    dir
      .split(/[\\/]/)
      .pop()!
      .replace(/[^A-Za-z0-9._-]/g, "-") || "guest";
  const build = `node ${dormant} build ${source} -o guest.wasm`;
  // TypeScript comes with Dormant's own development install (npm install in its checkout).
  const check = `node ${relative(dir, join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc"))} -p .`;
  const test = `${build} && node --test guest.test.js`;
  const scripts: Record<string, string> = { build, ...(template === "ts" ? { check, test: `${check} && ${test}` } : { test }) };
  // The test imports dormant/testing: npm install links this Dormant (no download).
  const pkg = { name, private: true, type: "module", scripts, devDependencies: { dormant: `file:${relative(dir, PACKAGE_ROOT)}` } };
  await writeFile(join(dir, "guest.test.js"), TESTS[template]);
  await writeFile(join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  await writeFile(join(dir, "README.md"), readme(name, template, source, dormant, types));
  console.log(`wrote a ${template} guest into ${dir}: ${source}, guest.test.js, README.md, package.json${template === "ts" ? ", tsconfig.json" : ""}`);
  console.log(`next: cd ${target} && npm install && npm test`);
}

function readme(name: string, template: Template, source: string, dormant: string, types: string): string {
  const what =
    template === "wat"
      ? "A guest written against the canonical ABI by hand: it counts the events it handles and answers each with the count."
      : "Registers two tasks when it is first activated: `every-minute` (cron) and a push task whose URL `dormant deploy` prints.";
  const check =
    template === "ts"
      ? `\nType-check it with \`npm run check\` (\`tsc -p .\`, with the TypeScript of Dormant's checkout).
The types of the \`dormant:host\` modules are in \`${types}/guest.d.ts\`, generated from the WIT;
\`tsconfig.json\` lists them, so no \`paths\` mapping is needed. A refused registration throws an
error whose \`payload\` is the task-error (\`{ tag, val }\`, \`val\` saying what to change).\n`
      : "";
  return `# ${name}

${what}

Build it into a component (\`npm run build\`, which runs \`node ${dormant} build ${source} -o guest.wasm\`).
${check}
Test it: \`npm install\` once (it links this Dormant, nothing is downloaded), then \`npm test\`,
which builds \`guest.wasm\` and runs \`guest.test.js\`. The tests use Dormant's test kit,
\`createTestHost\` from \`dormant/testing\`: the guest runs in-process on a fake clock
(\`await t.advance("1h")\` runs every timer due on the way), \`t.push(task, { body })\`
answers with the reply, \`t.call(entry)\` calls an entry point directly, \`t.logs\`,
\`t.tasks()\`, \`t.deadLetters()\` say what happened, and \`await t.freeze()\` puts the
guest in storage so the next event wakes it from its snapshot. It works from vitest too.

Deploy it to a running \`dormant serve\` (its admin token in \`DORMANT_ADMIN_TOKEN\`), which
activates it and prints its tasks and push URLs${template === "wat" ? "" : ", then push to it"}:

\`\`\`sh
node ${dormant} deploy guest.wasm --name ${name}
${template === "wat" ? `node ${dormant} ps` : "curl -X POST <the push URL it printed> -d 'hi'"}
node ${dormant} tasks --partition ${name}
\`\`\`

Redeploy after a change with \`--replace\`. The guest's \`console.*\` and \`log\` calls are
\`guest-log\` lines in the server's log.
`;
}
