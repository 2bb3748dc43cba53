// jco's glue, made cheaper to run; what a guest sees does not change. jco is pinned, and each
// rewrite below leaves the glue as jco wrote it wherever its pattern is not found whole.

/**
 * The glue the engine runs (see GLUE_REVISION in jco-engine.ts).
 *
 * - It calls `_debugLog(…)` about 90 times per guest call, and each call reads
 *   `process.env.JCO_DEBUG` (a slow lookup in Node) after building its arguments: a third or
 *   more of a small guest call. Those calls are statements of their own, so prefixing each
 *   with `false &&` drops the work and keeps the code valid.
 * - At instantiation it tries `WebAssembly.promising(export)` for every export (seven for
 *   the QuickJS counter) and keeps the plain export when that throws. Node 20 has no
 *   `WebAssembly.promising`, and V8 words the "is not a function" TypeError by parsing the
 *   3,000-line function that made the call again: 1.4 ms each, two thirds of instantiating
 *   a QuickJS guest. The glue calls a stand-in that hands the plain export back, as the
 *   glue's catch would have, or the real function where V8 has it.
 * - Dormant's own imports are called directly (see `directHostImports`), and where a guest
 *   imports nothing else, its exports too (see `directExports`).
 */
export function quietGlue(glue: Uint8Array): string {
  const text = Buffer.from(glue)
    .toString("utf8")
    .replace(/^(\s*)_debugLog\(/gm, "$1false && _debugLog(")
    .replaceAll("WebAssembly.promising(", "_dormantPromising(");
  return `${directExports(directHostImports(text))}\n${PROMISING}\n`;
}

/** Appended, so the glue's line numbers stay jco's; it is defined before anything instantiates. */
const PROMISING = "const _dormantPromising = typeof WebAssembly.promising === 'function' ? (f) => WebAssembly.promising(f) : (f) => f;";

/** Marks a trampoline the lowering helper calls straight through. */
export const DIRECT_MARK = "_dormantDirect";

/**
 * jco lowers every import through the machinery of component-model async tasks: a subtask
 * on the calling export's task, a task of its own for the host function, the global
 * current-task record set and cleared around it. Dormant's imports (`dormant:host/*`) are
 * synchronous host functions that never call back into the guest, so none of it has
 * anything to track. It costs 10 µs a call on a warm CPU and 100–170 µs on one just woken
 * from idle (each wake), against 18 µs for the whole of the WAT guest's `on-activate`
 * called without it.
 *
 * Each such trampoline keeps its own lifting and lowering (the generated, per-function
 * code) and loses only the task bookkeeping around the host call; the lowering helper
 * calls it directly, after the same may-leave check. A trampoline whose code is not in the
 * expected shape is left as it is, so a different jco degrades to its own, slower path.
 * WASI imports, and the exports, keep jco's machinery.
 */
export function directHostImports(glue: string): string {
  const entry = "function _lowerImportBackwardsCompat(args) {";
  if (!glue.includes(entry)) return glue;
  let text = glue;
  let direct = 0;
  for (const [, name] of glue.matchAll(/^\s*(_trampoline\d+)\.fnName = 'dormant:host\/[^']+';$/gm)) {
    const start = text.indexOf(`const ${name} = function(`);
    const end = text.indexOf(`${name}.fnName = `);
    if (start < 0 || end < start) continue;
    const body = withoutTaskBookkeeping(text.slice(start, end));
    if (body === undefined) continue;
    text = `${text.slice(0, start)}${body}${name}.${DIRECT_MARK} = true;\n${text.slice(end)}`;
    direct++;
  }
  if (direct === 0) return glue;
  const fastPath = `if (args.importFn.${DIRECT_MARK} === true) { _checkMayLeave(args.componentIdx); return args.importFn(...Array.prototype.slice.call(arguments, 1)); }`;
  return text.replace(entry, `${entry} ${fastPath}`);
}

/**
 * An export's task, made only if something asks for it (see `directExports`): until then each
 * method does what jco's would for a sync export that nothing looks at, and costs nothing.
 * One class for every instance (jco's own are made anew in each), reaching the instance's
 * task functions through the kit `TASK_KIT` puts in its scope.
 */
const LAZY_TASK = `
class _DormantLazyTask {
  #args; #kit; #real; #memoryIdx; #memory; #settled; #errored; #exited = false; #leaveMeta;
  constructor(args, kit) { this.#args = args; this.#kit = kit; _dormantExport = this; }
  get kit() { return this.#kit; }
  materialize() {
    if (this.#real) return this.#real;
    const [task] = this.#kit.create(this.#args);
    task.setCalleeIsAsync(false);
    task.enterSync();
    if (this.#memoryIdx !== undefined) task.setReturnMemoryIdx(this.#memoryIdx);
    if (this.#memory !== undefined) task.setReturnMemory(this.#memory);
    // Asked for after the export settled (its post-return, say): the task is told what it missed.
    if (this.#errored) task.setErrored(this.#errored.error);
    if (this.#settled?.ok === true) task.resolve(this.#settled.value);
    if (this.#settled?.ok === false) task.reject(this.#settled.error);
    // Current until the export exits, then the caller's again, as jco's wrapper around an export leaves it.
    this.#leaveMeta = this.#kit.enterMeta({ taskID: task.id(), componentIdx: this.#args.componentIdx });
    return (this.#real = task);
  }
  setCalleeIsAsync() {}
  enterSync() { return true; }
  mayBlock() { return false; }
  setReturnMemoryIdx(idx) { this.#memoryIdx = idx; }
  setReturnMemory(memory) { this.#memory = memory; }
  id() { return this.#real ? this.#real.id() : 0; }
  componentIdx() { return this.#args.componentIdx; }
  resolve(value) { if (this.#real) this.#real.resolve(value); else this.#settled = { ok: true, value }; }
  reject(error) { if (this.#real) this.#real.reject(error); else this.#settled = { ok: false, error }; }
  setErrored(error) { if (this.#real) this.#real.setErrored(error); else this.#errored = { error }; }
  isResolvedState() { return this.#real ? this.#real.isResolvedState() : this.#settled !== undefined; }
  isExited() { return this.#real ? this.#real.isExited() : this.#exited; }
  exit(args) {
    if (_dormantExport === this) _dormantExport = undefined;
    this.#exited = true;
    this.#real?.exit(args);
    this.#leaveMeta?.();
  }
}
let _dormantExport;
function _dormantWithoutTask(args) { return args.fn(); }
function _dormantCallerTask(componentIdx) {
  if (_dormantExport?.componentIdx() !== componentIdx) return undefined;
  _dormantExport.materialize();
  return _dormantExport.kit.current(componentIdx);
}`;

/** Put in an instance's scope, on one line before jco's task functions (hoisted there): what `_DormantLazyTask` calls. */
const TASK_KIT = [
  "const _dormantKit = { create: (args) => createNewCurrentTask(args), current: (idx) => getCurrentTask(idx), ",
  "enterMeta: (meta) => { const previous = CURRENT_TASK_META[meta.componentIdx] ?? null, previousCurrent = CURRENT_TASK_META.current ?? null; ",
  "_setGlobalCurrentTaskMeta(meta); return () => { CURRENT_TASK_META[meta.componentIdx] = previous; CURRENT_TASK_META.current = previousCurrent; }; } };\n",
].join("");
const TASK_FUNCTIONS = "  function createNewCurrentTask(args) {";

/**
 * jco runs every export call as a component-model task: a task object created, entered under
 * the component's lock, made current around the core call, resolved and exited. Dormant's
 * executor never re-enters an instance (what the lock guards against), and with every import
 * one of Dormant's, called directly (see `directHostImports`), nothing looks for the task;
 * the one thing that could is an adapter jco fused between two components of a composed
 * guest (the QuickJS runtime wires such adapters to its WASI stubs), which asks for its
 * caller's current task. So an export runs on a task made only when an adapter asks for it
 * (`_DormantLazyTask`): the adapter then gets the task jco would have made, entered and
 * current, and the export resolves and exits it as jco's code would. Not one of the example
 * guests' calls reaches such an adapter. On 200 instances called in turn (each wake's
 * `on-activate` and `on-task`, each partition's event in a burst of timers, meet an instance
 * not called last), `on-task` took 72–100 µs (WAT) and 98–152 µs (QuickJS) a call with the
 * bookkeeping, 9–16 and 32–72 µs without it. The trap check before the call, the trap
 * marking after one and the may-leave flag around post-return stay as jco wrote them. Glue
 * not in the shape this expects is left as it is.
 */
export function directExports(glue: string): string {
  const lowered = [...glue.matchAll(/^\s*let (trampoline\d+) = _\1\.manuallyAsync \?/gm)].map(([, name]) => name!);
  if (!lowered.every((name) => glue.includes(`_${name}.${DIRECT_MARK} = true;`))) return glue;
  const created = /const \[task, _wasm_call_currentTaskID\] = createNewCurrentTask\((\{[^}]*?callingWasmExport: true,\s*\})\);/g;
  const meta = /_withGlobalCurrentTaskMeta\(\{\s*taskID: task\.id\(\),\s*componentIdx: task\.componentIdx\(\),\s*fn:/g;
  const exports = glue.match(created)?.length ?? 0;
  // Each export makes its task current twice: around the whole call and around the core call.
  if (exports === 0 || (glue.match(meta)?.length ?? 0) !== 2 * exports) return glue;
  const kitFunctions = ["  function getCurrentTask(componentIdx", "  function _setGlobalCurrentTaskMeta(args)", "const CURRENT_TASK_META = {};"];
  if (glue.split(TASK_FUNCTIONS).length !== 2 || !kitFunctions.every((declared) => glue.includes(declared))) return glue;
  let text = glue.replace(TASK_FUNCTIONS, `  ${TASK_KIT}${TASK_FUNCTIONS}`);
  if (glue.includes("'enter-sync-call'")) {
    const caller = "const callerTaskMeta = getCurrentTask(callerComponentIdx);";
    if (glue.split(caller).length !== 2) return glue;
    text = text.replace(caller, "const callerTaskMeta = getCurrentTask(callerComponentIdx) ?? _dormantCallerTask(callerComponentIdx);");
  }
  // An adapter's context slots belong to the current task: one read or written there makes the export's task first.
  if (/contextGet\.bind\(|contextSet\.bind\(/.test(glue)) {
    const context = "const currentTaskMeta = _getGlobalCurrentTaskMeta(ctx.componentIdx)";
    if (glue.split(context).length !== 3) return glue;
    text = text.replaceAll(context, `_dormantExport?.materialize();\n    ${context}`);
  }
  text = text.replace(created, "const task = new _DormantLazyTask($1, _dormantKit);").replace(meta, "_dormantWithoutTask({ fn:");
  return `${text}\n${LAZY_TASK}\n`;
}

/** A trampoline's code without its task bookkeeping, or undefined when it is not in the shape jco 1.35 writes. */
function withoutTaskBookkeeping(code: string): string | undefined {
  // Creating the host function's task and linking it to the caller's subtask.
  const created = /const createTask = \(\) => \{[\s\S]*?const started = task\.enterSync\(\);/;
  if (!created.test(code)) return undefined;
  let out = code.replace(created, "");
  // The host call, wrapped in the current-task record: only the call is kept.
  const wrapper = /_withGlobalCurrentTaskMeta\(\{\s*componentIdx: task\.componentIdx\(\),\s*taskID: task\.id\(\),\s*fn: \(\) => _trackHostOperation\(\(\) => /;
  const found = wrapper.exec(out);
  if (!found) return undefined;
  const callStart = found.index + found[0].length;
  const close = closingParen(out, found.index + found[0].indexOf("_trackHostOperation(") + "_trackHostOperation".length);
  if (close === undefined) return undefined;
  const tail = /^\),\s*\}\)/.exec(out.slice(close));
  if (!tail) return undefined;
  out = `${out.slice(0, found.index)}${out.slice(callStart, close)}${out.slice(close + tail[0].length)}`;
  // Settling the task, on failure and at the end.
  out = out.replace(/task\.setErrored\(err\);\s*task\.reject\(err\);\s*task\.exit\(\);/, "");
  const settled = /task\.resolve\(\[[^\]\n]*\]\);\s*task\.exit\(\);/;
  if (!settled.test(out)) return undefined;
  out = out.replace(settled, "");
  // Nothing of the task may be left but what the short-circuited debug logging names.
  if (/\b(task|subtask|parentTask)\.\w|\bstarted\b/.test(withoutDebugLogging(out))) return undefined;
  return out;
}

/** The code without its `false && _debugLog(…)` statements (never evaluated). */
function withoutDebugLogging(code: string): string {
  let out = code;
  for (let at = out.indexOf("false && _debugLog("); at >= 0; at = out.indexOf("false && _debugLog(")) {
    const close = closingParen(out, at + "false && _debugLog".length);
    if (close === undefined) return out;
    out = out.slice(0, at) + out.slice(close + 1);
  }
  return out;
}

/** Index of the parenthesis closing the one at `open`, skipping string and template literals. */
function closingParen(code: string, open: number): number | undefined {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i];
    if (c === "'" || c === '"' || c === "`") {
      for (i++; i < code.length && code[i] !== c; i++) if (code[i] === "\\") i++;
      continue;
    }
    if (c === "(" || c === "{" || c === "[") depth++;
    else if (c === ")" || c === "}" || c === "]") {
      depth--;
      if (depth === 0) return c === ")" ? i : undefined;
    }
  }
  return undefined;
}
